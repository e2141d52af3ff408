//! Convolutional encoders of camera images (`module.encoder`): observations laid out as an
//! env's own values followed by its cameras' images ([`ImageLayout`]) go in; the env's values
//! and the image features come out, `[n, state_len + features]`, so an actor and a critic
//! can share one encoder and take its output as their MLPs' input.
//!
//! The cameras' images (all of one size) are stacked as channels, each channel scaled to
//! about [0, 1] (colour ÷ 255, depth ÷ the camera's `far`) on the learner's device, then:
//! - `nature-cnn` (Mnih et al., 2015, as Stable-Baselines3's `NatureCNN`): 32 8×8 filters
//!   stride 4, 64 4×4 stride 2, 64 3×3 stride 1, ReLU after each, a linear layer to
//!   `features` and ReLU;
//! - `drq` (the DrQ-v2 encoder, Yarats et al., 2021): images shifted to [−0.5, 0.5], 32 3×3
//!   filters stride 2 then three of 32 3×3 stride 1 with ReLU, a linear layer to `features`,
//!   layer norm and tanh (DrQ-v2's actor and critic trunk).
//!
//! Weights start orthogonal with gain √2 (as Stable-Baselines3 initialises its CNNs), biases
//! at zero, layer norm at (1, 0).

use super::spec::{EncoderArch, EncoderSpec};
use crate::spaces::ImageLayout;
use tch::{Device, Kind, Tensor};

/// (out channels, kernel, stride) of each convolution.
fn convs(arch: EncoderArch) -> &'static [(i64, i64, i64)] {
    match arch {
        EncoderArch::NatureCnn => &[(32, 8, 4), (64, 4, 2), (64, 3, 1)],
        EncoderArch::Drq => &[(32, 3, 2), (32, 3, 1), (32, 3, 1), (32, 3, 1)],
    }
}

/// The images' channels and size, checked: every camera the same size, large enough for the
/// convolutions.
pub fn image_shape(arch: EncoderArch, layout: &ImageLayout) -> Result<(i64, i64, i64), String> {
    let first = layout.cameras.first().ok_or("the env has no cameras: an encoder needs camera images in the observation")?;
    if let Some(c) = layout.cameras.iter().find(|c| (c.width, c.height) != (first.width, first.height)) {
        return Err(format!(
            "cameras `{}` ({}×{}) and `{}` ({}×{}) differ in size; one encoder stacks its cameras' images, which must be one size",
            first.name, first.width, first.height, c.name, c.width, c.height
        ));
    }
    let channels: usize = layout.cameras.iter().map(|c| c.channel_count()).sum();
    let (mut h, mut w) = (i64::from(first.height), i64::from(first.width));
    for &(_, k, s) in convs(arch) {
        if h < k || w < k {
            return Err(format!("{}×{} images are too small for the {arch:?} encoder's {k}×{k} filters", first.width, first.height));
        }
        (h, w) = ((h - k) / s + 1, (w - k) / s + 1);
    }
    Ok((channels as i64, i64::from(first.height), i64::from(first.width)))
}

/// Per-channel factors that bring the stacked images to about [0, 1], `[1, C, 1, 1]`.
pub fn scales(layout: &ImageLayout, device: Device) -> Tensor {
    let s: Vec<f32> = layout.cameras.iter().flat_map(|c| c.channel_scales()).map(|v| 1.0 / v).collect();
    Tensor::from_slice(&s).view([1, -1, 1, 1]).to_device(device)
}

/// Initial parameters: each convolution's weight and bias, the linear layer's, and (DrQ)
/// the layer norm's.
pub fn init(spec: &EncoderSpec, layout: &ImageLayout, device: Device) -> Result<Vec<Tensor>, String> {
    if spec.features == 0 {
        return Err("`features` must be positive".into());
    }
    let (c, h, w) = image_shape(spec.arch, layout)?;
    let orth = |dims: &[i64]| -> Result<Tensor, String> {
        tch::nn::init::f_init(tch::nn::Init::Orthogonal { gain: 2f64.sqrt() }, dims, device, Kind::Float)
            .and_then(|t| t.f_view(dims))
            .map_err(|e| e.to_string())
    };
    let mut params = Vec::new();
    let mut input = c;
    for &(out, k, _) in convs(spec.arch) {
        params.push(orth(&[out, input, k, k])?);
        params.push(Tensor::zeros([out], (Kind::Float, device)));
        input = out;
    }
    // The flattened size, from a forward pass of zeros through the convolutions.
    let flat = tch::no_grad(|| conv_stack(spec.arch, &params, &Tensor::zeros([1, c, h, w], (Kind::Float, device))))
        .map_err(|e| e.to_string())?
        .size()[1];
    let f = i64::from(spec.features);
    params.push(orth(&[f, flat])?);
    params.push(Tensor::zeros([f], (Kind::Float, device)));
    if spec.arch == EncoderArch::Drq {
        params.push(Tensor::ones([f], (Kind::Float, device)));
        params.push(Tensor::zeros([f], (Kind::Float, device)));
    }
    Ok(params)
}

fn conv_stack(arch: EncoderArch, p: &[Tensor], x: &Tensor) -> Result<Tensor, tch::TchError> {
    let mut h = x.shallow_clone();
    for (i, &(_, _, s)) in convs(arch).iter().enumerate() {
        h = h.f_conv2d(&p[2 * i], Some(&p[2 * i + 1]), [s, s], [0, 0], [1, 1], 1)?.f_relu()?;
    }
    h.f_flatten(1, -1)
}

/// `[n, state_len + features]` for `[n, obs_len]` observations.
pub fn forward(spec: &EncoderSpec, layout: &ImageLayout, scale: &Tensor, p: &[Tensor], x: &Tensor) -> Result<Tensor, tch::TchError> {
    let n = x.size().first().copied().unwrap_or(0);
    let expected = layout.obs_len() as i64;
    if x.dim() != 2 || x.size()[1] != expected {
        return Err(tch::TchError::Shape(format!(
            "the encoder takes [n, {expected}] observations ({} values and the images of {}), got {:?}",
            layout.state_len,
            layout.cameras.iter().map(|c| c.describe()).collect::<Vec<_>>().join(", "),
            x.size()
        )));
    }
    let x = if x.kind() == Kind::Float { x.shallow_clone() } else { x.f_to_kind(Kind::Float)? };
    let state = x.f_narrow(1, 0, layout.state_len as i64)?;
    let mut planes = Vec::with_capacity(layout.cameras.len());
    for (c, off) in layout.cameras.iter().zip(layout.offsets()) {
        let shape = [n, c.channel_count() as i64, i64::from(c.height), i64::from(c.width)];
        planes.push(x.f_narrow(1, off as i64, c.len() as i64)?.f_view(shape)?);
    }
    let mut img = Tensor::f_cat(&planes, 1)?.f_mul(scale)?;
    if spec.arch == EncoderArch::Drq {
        img = img.f_sub_scalar(0.5)?;
    }
    let convs_n = convs(spec.arch).len();
    let flat = conv_stack(spec.arch, p, &img)?;
    let mut f = flat.f_linear(&p[2 * convs_n], Some(&p[2 * convs_n + 1]))?;
    f = match spec.arch {
        EncoderArch::NatureCnn => f.f_relu()?,
        EncoderArch::Drq => {
            let feats = i64::from(spec.features);
            f.f_layer_norm([feats], Some(&p[2 * convs_n + 2]), Some(&p[2 * convs_n + 3]), 1e-5, false)?.f_tanh()?
        }
    };
    Tensor::f_cat(&[state, f], 1)
}

/// DrQ's random shift: each observation's images (as laid out by `layout`) moved by a
/// random whole number of pixels in `[-pad, pad]` each way, edges repeated (one draw per
/// observation, shared by its cameras); the env's own values unchanged.
pub fn random_shift(layout: &ImageLayout, x: &Tensor, pad: i64) -> Result<Tensor, tch::TchError> {
    if x.dim() != 2 || x.size()[1] != layout.obs_len() as i64 {
        return Err(tch::TchError::Shape(format!("random-shift takes [n, {}] observations, got {:?}", layout.obs_len(), x.size())));
    }
    if pad == 0 {
        return Ok(x.shallow_clone());
    }
    let n = x.size()[0];
    let device = x.device();
    let mut parts = vec![x.f_narrow(1, 0, layout.state_len as i64)?];
    // One shift per observation.
    let ox = Tensor::f_randint_low(0, 2 * pad + 1, [n], (Kind::Int64, device))?;
    let oy = Tensor::f_randint_low(0, 2 * pad + 1, [n], (Kind::Int64, device))?;
    for (c, off) in layout.cameras.iter().zip(layout.offsets()) {
        let (ch, h, w) = (c.channel_count() as i64, i64::from(c.height), i64::from(c.width));
        let img = x.f_narrow(1, off as i64, c.len() as i64)?.f_view([n, ch, h, w])?;
        let padded = img.f_pad([pad, pad, pad, pad], "replicate", None)?;
        // Rows oy..oy+h, then columns ox..ox+w, of the padded image.
        let rows = oy.f_view([n, 1])?.f_add(&Tensor::f_arange(h, (Kind::Int64, device))?.f_view([1, h])?)?;
        let rows = rows.f_view([n, 1, h, 1])?.f_expand([n, ch, h, w + 2 * pad], false)?;
        let picked = padded.f_gather(2, &rows, false)?;
        let cols = ox.f_view([n, 1])?.f_add(&Tensor::f_arange(w, (Kind::Int64, device))?.f_view([1, w])?)?;
        let cols = cols.f_view([n, 1, 1, w])?.f_expand([n, ch, h, w], false)?;
        parts.push(picked.f_gather(3, &cols, false)?.f_reshape([n, -1])?);
    }
    Tensor::f_cat(&parts, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learner::spec::{EncoderArch, EncoderSpec};
    use crate::spaces::{CameraSlot, ImageLayout};

    fn layout(side: u32, cameras: usize) -> ImageLayout {
        let cam = |i: usize| CameraSlot {
            name: format!("c{i}"),
            width: side,
            height: side,
            rgb: true,
            depth: i == 0,
            segmentation: false,
            far: 4.0,
        };
        ImageLayout { state_len: 3, cameras: (0..cameras).map(cam).collect() }
    }

    #[test]
    fn encoders_put_out_the_state_then_their_features() {
        tch::set_num_threads(1);
        for (arch, side) in [(EncoderArch::NatureCnn, 36), (EncoderArch::Drq, 20)] {
            let l = layout(side, 2);
            let spec = EncoderSpec { arch, features: 8 };
            let p = init(&spec, &l, Device::Cpu).expect("init");
            let x = Tensor::rand([5, l.obs_len() as i64], (Kind::Float, Device::Cpu)).f_mul_scalar(255.0).expect("scale");
            let y = forward(&spec, &l, &scales(&l, Device::Cpu), &p, &x).expect("forward");
            assert_eq!(y.size(), [5, 3 + 8]);
            // The env's own values pass through untouched.
            assert_eq!(y.narrow(1, 0, 3), x.narrow(1, 0, 3));
            let bad = forward(&spec, &l, &scales(&l, Device::Cpu), &p, &x.narrow(1, 0, 10)).expect_err("wrong width");
            assert!(bad.to_string().contains(&format!("takes [n, {}] observations", l.obs_len())), "{bad}");
        }
        let small = init(&EncoderSpec { arch: EncoderArch::NatureCnn, features: 8 }, &layout(32, 1), Device::Cpu).expect_err("too small");
        assert!(small.contains("32×32 images are too small for the NatureCnn encoder's 3×3 filters"), "{small}");
        let mut mixed = layout(36, 2);
        mixed.cameras[1].width = 40;
        let err = init(&EncoderSpec { arch: EncoderArch::NatureCnn, features: 8 }, &mixed, Device::Cpu).expect_err("sizes differ");
        assert!(err.contains("cameras `c0` (36×36) and `c1` (40×36) differ in size"), "{err}");
    }

    #[test]
    fn random_shift_moves_each_observation_by_whole_pixels_and_keeps_the_state() {
        tch::manual_seed(3);
        let l = layout(6, 2);
        let n = 64;
        let x = Tensor::arange(n * l.obs_len() as i64, (Kind::Float, Device::Cpu)).view([n, l.obs_len() as i64]);
        assert_eq!(random_shift(&l, &x, 0).expect("no pad"), x);
        let y = random_shift(&l, &x, 2).expect("shift");
        assert_eq!(y.size(), x.size());
        assert_eq!(y.narrow(1, 0, 3), x.narrow(1, 0, 3), "the state is kept");
        let mut shifts = std::collections::BTreeSet::new();
        for i in 0..n {
            let mut found = None;
            // Each camera's image is the original moved by one (dx, dy), edges repeated.
            for (c, off) in l.cameras.iter().zip(l.offsets()) {
                let (ch, h, w) = (c.channel_count() as i64, 6i64, 6i64);
                let orig = x.get(i).narrow(0, off as i64, c.len() as i64).view([ch, h, w]);
                let got = y.get(i).narrow(0, off as i64, c.len() as i64).view([ch, h, w]);
                let mut matched = None;
                for dy in -2..=2i64 {
                    for dx in -2..=2i64 {
                        let rows = Tensor::from_slice(&(0..h).map(|r| (r + dy).clamp(0, h - 1)).collect::<Vec<_>>());
                        let cols = Tensor::from_slice(&(0..w).map(|q| (q + dx).clamp(0, w - 1)).collect::<Vec<_>>());
                        if orig.index_select(1, &rows).index_select(2, &cols) == got {
                            matched = Some((dx, dy));
                        }
                    }
                }
                let m = matched.expect("a whole-pixel shift");
                assert!(found.is_none_or(|f| f == m), "one shift per observation, shared by its cameras");
                found = Some(m);
            }
            shifts.insert(found.expect("cameras"));
        }
        assert!(shifts.len() >= 15, "64 draws cover most of the 25 shifts: {shifts:?}");
    }
}
