//! Camera images in observations: after each call that hands observations back, the host
//! renders every camera an env added to its worlds (`physics.add-camera`) and appends the
//! images to the env's own values. The layout is fixed after `init` (every env the same);
//! envs of one instance are rendered in parallel, each image by one thread, so the bytes do
//! not depend on how envs are spread over instances or threads.

use super::sandbox::PluginState;
use crate::physics::Simulation;
use crate::spaces::{CameraSlot, ImageLayout};
use rayon::prelude::*;
use wasmtime::component::Resource;

fn slot(c: &crate::physics::CameraDesc) -> CameraSlot {
    CameraSlot {
        name: c.name.clone(),
        width: c.width,
        height: c.height,
        rgb: c.channels.rgb,
        depth: c.channels.depth,
        segmentation: c.channels.segmentation,
        far: c.far,
    }
}

impl PluginState {
    fn live_simulations(&self) -> Vec<&Simulation> {
        self.simulations.iter().filter_map(|&rep| self.table.get(&Resource::<Simulation>::new_own(rep)).ok()).collect()
    }

    /// The cameras of each of `num_envs` envs, in the order they were added; an error
    /// naming the env and camera when they differ from env 0's, or when a camera names an
    /// env the instance does not have.
    pub(crate) fn camera_layout(&self, num_envs: usize) -> Result<Vec<CameraSlot>, String> {
        let mut per_env: Vec<Vec<CameraSlot>> = vec![Vec::new(); num_envs];
        for sim in self.live_simulations() {
            for c in sim.cameras() {
                let Some(list) = per_env.get_mut(c.env as usize) else {
                    return Err(format!(
                        "camera `{}` is for env {}, but this instance hosts {num_envs} envs (0 to {})",
                        c.name,
                        c.env,
                        num_envs.saturating_sub(1)
                    ));
                };
                list.push(slot(c));
            }
        }
        let first = per_env.first().cloned().unwrap_or_default();
        for (e, list) in per_env.iter().enumerate().skip(1) {
            if *list != first {
                let show = |l: &[CameraSlot]| l.iter().map(CameraSlot::describe).collect::<Vec<_>>().join(", ");
                return Err(format!(
                    "env {e} has cameras [{}], env 0 has [{}]: every env must add the same cameras",
                    show(list),
                    show(&first)
                ));
            }
        }
        Ok(first)
    }

    /// Renders the images of `envs` (each `layout`'s cameras, in order) into `out`
    /// (`envs.len() × image_len`); with `use_captures`, an env's images are the ones captured
    /// before its world was reset (the last view of its episode), or, when none was
    /// captured, the current view.
    pub(crate) fn render_images(&mut self, layout: &ImageLayout, envs: &[u32], use_captures: bool, out: &mut [f32]) -> Result<(), String> {
        let image_len = layout.image_len();
        for &rep in &self.simulations {
            if let Ok(sim) = self.table.get_mut(&Resource::<Simulation>::new_own(rep))
                && !sim.cameras().is_empty()
            {
                sim.prepare_cameras();
            }
        }
        // (env, camera name) → (simulation, camera index).
        let mut index = std::collections::HashMap::new();
        let sims = self.live_simulations();
        for (s, sim) in sims.iter().enumerate() {
            for (i, c) in sim.cameras().iter().enumerate() {
                index.insert((c.env, c.name.as_str()), (s, i));
            }
        }
        let offsets: Vec<usize> = layout.offsets().iter().map(|o| o - layout.state_len).collect();
        let captures = &self.captures;
        out.par_chunks_mut(image_len.max(1)).zip(envs.par_iter()).try_for_each(|(chunk, &env)| -> Result<(), String> {
            for (c, &off) in layout.cameras.iter().zip(&offsets) {
                let dst = &mut chunk[off..off + c.len()];
                if use_captures && let Some(img) = captures.get(&(env, c.name.clone())) {
                    dst.copy_from_slice(img);
                    continue;
                }
                let &(s, i) = index
                    .get(&(env, c.name.as_str()))
                    .ok_or_else(|| format!("env {env} no longer has camera `{}` (a rebuilt world must add its cameras again)", c.name))?;
                sims[s].render(i, dst).map_err(|e| format!("camera `{}` of env {env}: {e}", c.name))?;
            }
            Ok(())
        })
    }

    /// Forgets captured images and marks every world as rendered (after a call's images
    /// were taken).
    pub(crate) fn images_taken(&mut self) {
        self.captures.clear();
        for &rep in &self.simulations {
            if let Ok(sim) = self.table.get_mut(&Resource::<Simulation>::new_own(rep)) {
                sim.rendered();
            }
        }
    }
}

/// Pixel `p` of a colour image laid out channel-major (`plane` values a channel), as bytes.
fn rgb_at(img: &[f32], plane: usize, p: usize) -> [u8; 3] {
    [0, 1, 2].map(|k| img[k * plane + p].clamp(0.0, 255.0) as u8)
}

/// Writes each camera's images in `obs` (one observation laid out by `layout`) as PNG files
/// under `dir`: `<camera>/<name>.png` (colour), `<camera>/<name>-depth.png` (near white, far
/// black) and `<camera>/<name>-segmentation.png` (a colour per body). Returns the files
/// written.
pub fn write_pngs(layout: &ImageLayout, obs: &[f32], dir: &std::path::Path, name: &str) -> anyhow::Result<Vec<std::path::PathBuf>> {
    use anyhow::Context;
    let mut written = Vec::new();
    for (c, off) in layout.cameras.iter().zip(layout.offsets()) {
        let (w, h) = (c.width as usize, c.height as usize);
        let plane = w * h;
        let img = obs.get(off..off + c.len()).with_context(|| format!("camera `{}`: the observation is too short", c.name))?;
        let folder = dir.join(&c.name);
        std::fs::create_dir_all(&folder).with_context(|| format!("failed to create {}", folder.display()))?;
        let save = |suffix: &str, pixel: &dyn Fn(usize) -> [u8; 3]| -> anyhow::Result<std::path::PathBuf> {
            let mut pm = tiny_skia::Pixmap::new(c.width, c.height).context("an empty image")?;
            for (p, px) in pm.pixels_mut().iter_mut().enumerate() {
                let [r, g, b] = pixel(p);
                *px = tiny_skia::PremultipliedColorU8::from_rgba(r, g, b, 255).expect("opaque");
            }
            let path = folder.join(format!("{name}{suffix}.png"));
            pm.save_png(&path).with_context(|| format!("failed to write {}", path.display()))?;
            Ok(path)
        };
        let mut at = 0;
        if c.rgb {
            written.push(save("", &|p| rgb_at(img, plane, p))?);
            at = 3 * plane;
        }
        if c.depth {
            let d = &img[at..at + plane];
            let (lo, hi) = d.iter().fold((f32::MAX, 0.0f32), |(l, u), &v| if v < c.far { (l.min(v), u.max(v)) } else { (l, u) });
            let px = |p: usize| {
                let v = if d[p] >= c.far || hi <= lo { 0 } else { (255.0 - 215.0 * (d[p] - lo) / (hi - lo)) as u8 };
                [v; 3]
            };
            written.push(save("-depth", &px)?);
            at += plane;
        }
        if c.segmentation {
            let s = &img[at..at + plane];
            let px = |p: usize| {
                let id = s[p] as u32;
                if id == 0 { [0; 3] } else { [(id * 97 % 200 + 55) as u8, (id * 57 % 200 + 55) as u8, (id * 151 % 200 + 55) as u8] }
            };
            written.push(save("-segmentation", &px)?);
        }
    }
    Ok(written)
}

/// The first colour camera's image in `obs` (one observation laid out by `layout`), scaled
/// down by whole steps to at most `side` pixels a side, for the monitor.
pub fn thumbnail(layout: &ImageLayout, obs: &[f32], side: u32) -> Option<crate::format::scene::CameraPicture> {
    let (c, off) = layout.cameras.iter().zip(layout.offsets()).find(|(c, _)| c.rgb)?;
    let img = obs.get(off..off + c.len())?;
    let step = c.width.max(c.height).div_ceil(side.max(1)).max(1) as usize;
    let (w, h) = (c.width as usize, c.height as usize);
    let plane = w * h;
    let mut rgb = Vec::new();
    for y in (0..h).step_by(step) {
        for x in (0..w).step_by(step) {
            rgb.extend(rgb_at(img, plane, y * w + x));
        }
    }
    Some(crate::format::scene::CameraPicture { name: c.name.clone(), width: w.div_ceil(step) as u32, height: h.div_ceil(step) as u32, rgb })
}
