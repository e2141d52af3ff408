//! Builders and checks for spaces.

use crate::types::{BoxSpace, DiscreteSpace, PluginError, Space};

/// `Discrete(n)` starting at 0.
pub fn discrete(n: u32) -> Space {
    Space::Discrete(DiscreteSpace { n, start: 0 })
}

/// A 1-d `Box` with per-element bounds.
pub fn box1d(low: &[f32], high: &[f32]) -> Space {
    debug_assert_eq!(low.len(), high.len());
    Space::Box(BoxSpace { low: low.to_vec(), high: high.to_vec(), shape: vec![low.len() as u32] })
}

/// Number of flat `f32` elements a value of this space takes.
pub fn flat_len(space: &Space) -> usize {
    match space {
        Space::Discrete(_) => 1,
        Space::Box(b) => b.shape.iter().map(|&d| d as usize).product(),
        Space::MultiDiscrete(m) => m.nvec.len(),
    }
}

/// The integer of a discrete action, checked against the space.
pub fn discrete_action(action: &[f32], n: u32) -> Result<i64, PluginError> {
    let a = action[0];
    if !(a.fract() == 0.0 && a >= 0.0 && (a as u32) < n) {
        return Err(PluginError::InvalidAction(format!("action {a} is not in Discrete({n})")));
    }
    Ok(a as i64)
}

/// Fails unless every element of a continuous action is finite.
pub fn check_finite(action: &[f32]) -> Result<(), PluginError> {
    match action.iter().position(|a| !a.is_finite()) {
        Some(i) => Err(PluginError::InvalidAction(format!("action element {i} is {} (not finite)", action[i]))),
        None => Ok(()),
    }
}
