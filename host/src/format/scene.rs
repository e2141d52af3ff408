//! `scene.json`: one env's physics scene, projected to outlines, that the training loop writes
//! about once a second and the monitor draws; the same picture `paddock eval --frames` draws
//! into PNGs. `physics::render` makes it from a simulation.

/// A picture of a scene, projected: what `paddock eval --frames` draws into each PNG
/// (`physics::render::write_png`) and, as `scene.json` in a run dir, one env's live picture, written by the
/// training loop about once a second for envs on the host's physics and drawn by the
/// monitor (`paddock watch`, `train --tui`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SceneFile {
    /// When it was taken: env steps of training (`scene.json`), the episode's step (frames).
    pub step: u64,
    /// The x–z window to draw (x0, x1, z0, z1), fixed for the run so the picture holds still.
    pub view: [f32; 4],
    /// Outlines (convex polygons, x–z), one per collider, in drawing order.
    pub polygons: Vec<ScenePolygon>,
    /// What the env's first colour camera sees, downsampled (envs with cameras only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<CameraPicture>,
}

/// A small colour picture from a camera, for the monitor.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CameraPicture {
    /// The camera's name.
    pub name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Red, green, blue per pixel, row by row from the top.
    pub rgb: Vec<u8>,
}

/// One collider's outline in a [`SceneFile`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScenePolygon {
    /// Which body (colour index among the moving bodies); `None` for fixed bodies (grey).
    pub body: Option<usize>,
    /// The outline's corners, (x, z).
    pub points: Vec<[f32; 2]>,
    /// Its own colour (red, green, blue) from a robot file's material, drawn instead of its
    /// body's; absent in files written before visuals were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rgb: Option<[u8; 3]>,
}

impl ScenePolygon {
    /// Its colour: its own, else its body's from [`PALETTE`], else grey (a fixed body).
    pub fn colour(&self) -> (u8, u8, u8) {
        match (self.rgb, self.body) {
            (Some([r, g, b]), _) => (r, g, b),
            (None, Some(i)) => PALETTE[i % PALETTE.len()],
            (None, None) => (120, 120, 120),
        }
    }
}

/// The colours of moving bodies that have none of their own.
pub const PALETTE: [(u8, u8, u8); 6] = [(52, 101, 164), (204, 0, 0), (78, 154, 6), (196, 160, 0), (117, 80, 123), (206, 92, 0)];
