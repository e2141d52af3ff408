//! Host-side helpers for spaces: flat sizes, sanity checks of plugin-declared spaces, and
//! seeded random actions (for `env run` and exploration).

use crate::runtime::bindings::types::Space;
use rand::{Rng, RngExt};

/// Number of flat `f32` values one element of `space` takes.
pub fn flat_len(space: &Space) -> usize {
    match space {
        Space::Discrete(_) => 1,
        Space::Box(b) => b.shape.iter().map(|&d| d as usize).product(),
        Space::MultiDiscrete(m) => m.nvec.len(),
    }
}

/// Checks that a plugin-declared space is well formed.
pub fn check_space(space: &Space) -> Result<(), String> {
    match space {
        Space::Discrete(d) if d.n == 0 => Err("discrete space with n = 0".into()),
        Space::Box(b) => {
            let n = flat_len(space);
            if b.low.len() != n || b.high.len() != n {
                return Err(format!("box of shape {:?} has {} low and {} high bounds", b.shape, b.low.len(), b.high.len()));
            }
            match b.low.iter().zip(&b.high).position(|(l, h)| l.is_nan() || h.is_nan() || l > h) {
                Some(i) => Err(format!("box bound {i} is invalid (low {}, high {})", b.low[i], b.high[i])),
                None => Ok(()),
            }
        }
        Space::MultiDiscrete(m) if m.nvec.contains(&0) => Err("multi-discrete space with a zero dimension".into()),
        _ => Ok(()),
    }
}

/// Writes a uniformly random action of `space` into `out` (`flat_len` long). Unbounded
/// box dimensions draw from a standard normal, half-bounded ones from an exponential.
pub fn sample(space: &Space, rng: &mut impl Rng, out: &mut [f32]) {
    match space {
        Space::Discrete(d) => out[0] = (d.start + rng.random_range(0..i64::from(d.n))) as f32,
        Space::MultiDiscrete(m) => {
            for (o, &n) in out.iter_mut().zip(&m.nvec) {
                *o = rng.random_range(0..n) as f32;
            }
        }
        Space::Box(b) => {
            for ((o, &lo), &hi) in out.iter_mut().zip(&b.low).zip(&b.high) {
                let (lo_f, hi_f) = (lo.is_finite(), hi.is_finite());
                let u: f32 = rng.random();
                *o = match (lo_f, hi_f) {
                    (true, true) => lo + (hi - lo) * u,
                    (true, false) => lo - (1.0 - u).ln(),
                    (false, true) => hi + (1.0 - u).ln(),
                    (false, false) => {
                        // Box-Muller.
                        let v: f32 = rng.random();
                        (-2.0 * (1.0 - u).ln()).sqrt() * (std::f32::consts::TAU * v).cos()
                    }
                };
            }
        }
    }
}

/// Whether a flat action lies in `space`.
pub fn contains(space: &Space, action: &[f32]) -> bool {
    if action.len() != flat_len(space) {
        return false;
    }
    match space {
        Space::Discrete(d) => action[0].fract() == 0.0 && (action[0] as i64) >= d.start && (action[0] as i64) < d.start + i64::from(d.n),
        Space::MultiDiscrete(m) => action.iter().zip(&m.nvec).all(|(a, &n)| a.fract() == 0.0 && *a >= 0.0 && (*a as u32) < n),
        Space::Box(b) => action.iter().zip(b.low.iter().zip(&b.high)).all(|(a, (l, h))| a >= l && a <= h),
    }
}

/// A short text form, e.g. `Discrete(2)` or `Box(-2..2, [1])`.
pub fn describe(space: &Space) -> String {
    match space {
        Space::Discrete(d) if d.start == 0 => format!("Discrete({})", d.n),
        Space::Discrete(d) => format!("Discrete({}, start={})", d.n, d.start),
        Space::MultiDiscrete(m) => format!("MultiDiscrete({:?})", m.nvec),
        Space::Box(b) if b.low.len() <= 8 => {
            let fmt = |v: &[f32]| {
                v.iter().map(|x| format!("{x:.4}").trim_end_matches('0').trim_end_matches('.').to_string()).collect::<Vec<_>>().join(", ")
            };
            format!("Box(low [{}], high [{}], shape {:?})", fmt(&b.low), fmt(&b.high), b.shape)
        }
        Space::Box(b) => {
            let lo = b.low.iter().cloned().fold(f32::INFINITY, f32::min);
            let hi = b.high.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            format!("Box({lo}..{hi}, shape {:?})", b.shape)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::bindings::types::{BoxSpace, DiscreteSpace};
    use rand::SeedableRng;

    #[test]
    fn samples_lie_in_their_space() {
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(3);
        let spaces = [
            Space::Discrete(DiscreteSpace { n: 3, start: -1 }),
            Space::Box(BoxSpace { low: vec![-2.0, f32::NEG_INFINITY], high: vec![2.0, f32::INFINITY], shape: vec![2] }),
        ];
        for space in &spaces {
            check_space(space).expect("valid");
            let mut out = vec![0.0; flat_len(space)];
            for _ in 0..1000 {
                sample(space, &mut rng, &mut out);
                assert!(out.iter().all(|x| x.is_finite()));
                if let Space::Box(_) = space {
                    assert!((-2.0..=2.0).contains(&out[0]));
                } else {
                    assert!(contains(space, &out), "{out:?}");
                }
            }
        }
        let bad = Space::Box(BoxSpace { low: vec![1.0], high: vec![0.0], shape: vec![1] });
        assert!(check_space(&bad).is_err());
    }
}

/// Which images a camera renders (a camera's description, and its slot in a layout).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Channels {
    /// Colour: three channels, 0–255.
    pub rgb: bool,
    /// Depth along the camera's axis, m.
    pub depth: bool,
    /// Body index + 1 per pixel, 0 for nothing.
    pub segmentation: bool,
}

impl Channels {
    /// Number of channels (rgb counts three).
    pub fn count(&self) -> usize {
        3 * usize::from(self.rgb) + usize::from(self.depth) + usize::from(self.segmentation)
    }

    /// `rgb+depth`, … (for messages and layouts).
    pub fn describe(&self) -> String {
        let names = [(self.rgb, "rgb"), (self.depth, "depth"), (self.segmentation, "segmentation")];
        names.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect::<Vec<_>>().join("+")
    }
}

/// One camera of an env's observation.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CameraSlot {
    /// Its name.
    pub name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Whether it renders colour (three channels first).
    pub rgb: bool,
    /// Whether it renders depth (after colour).
    pub depth: bool,
    /// Whether it renders segmentation ids (last).
    pub segmentation: bool,
    /// Its farthest distance (the depth of empty pixels), m.
    pub far: f32,
}

impl CameraSlot {
    /// What it renders.
    pub fn channels(&self) -> Channels {
        Channels { rgb: self.rgb, depth: self.depth, segmentation: self.segmentation }
    }

    /// Number of channels (colour counts three).
    pub fn channel_count(&self) -> usize {
        self.channels().count()
    }

    /// What each channel's values are divided by to bring them to about [0, 1]: colour by
    /// 255, depth by `far`, segmentation ids by 255.
    pub fn channel_scales(&self) -> Vec<f32> {
        let mut s = Vec::new();
        if self.rgb {
            s.extend([255.0; 3]);
        }
        if self.depth {
            s.push(self.far);
        }
        if self.segmentation {
            s.push(255.0);
        }
        s
    }

    /// Values per image.
    pub fn len(&self) -> usize {
        self.channel_count() * self.width as usize * self.height as usize
    }

    /// Never true for a camera that was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `front 64×64 rgb+depth`.
    pub fn describe(&self) -> String {
        format!("{} {}×{} {}", self.name, self.width, self.height, self.channels().describe())
    }

    /// Bounds of its values, channel by channel.
    fn bounds(&self) -> Vec<(f32, f32)> {
        let mut b = Vec::new();
        if self.rgb {
            b.extend([(0.0, 255.0); 3]);
        }
        if self.depth {
            b.push((0.0, self.far));
        }
        if self.segmentation {
            b.push((0.0, u32::MAX as f32));
        }
        b
    }
}

/// How an env's observation is laid out when it has cameras: its own `state_len` values,
/// then each camera's image (`channels × height × width`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageLayout {
    /// Values the env itself hands back per observation.
    pub state_len: usize,
    /// The cameras, in order.
    pub cameras: Vec<CameraSlot>,
}

impl ImageLayout {
    /// Image values per observation.
    pub fn image_len(&self) -> usize {
        self.cameras.iter().map(CameraSlot::len).sum()
    }

    /// Values per observation, the env's and the images.
    pub fn obs_len(&self) -> usize {
        self.state_len + self.image_len()
    }

    /// Where each camera's image starts in an observation.
    pub fn offsets(&self) -> Vec<usize> {
        let mut at = self.state_len;
        self.cameras
            .iter()
            .map(|c| {
                let o = at;
                at += c.len();
                o
            })
            .collect()
    }

    /// Lower and upper bounds of the image values (appended to the env's box).
    pub fn bounds(&self) -> (Vec<f32>, Vec<f32>) {
        let (mut low, mut high) = (Vec::new(), Vec::new());
        for c in &self.cameras {
            let plane = c.width as usize * c.height as usize;
            for (l, h) in c.bounds() {
                low.extend(std::iter::repeat_n(l, plane));
                high.extend(std::iter::repeat_n(h, plane));
            }
        }
        (low, high)
    }
}
