//! Snapshots of a [`Simulation`]: the whole world as bytes (bincode), and back.

use super::{PhysicsError, Res, SNAPSHOT_VERSION, Simulation, State};
use rapier3d::prelude::*;

impl Simulation {
    /// The whole world as bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let state = State {
            version: SNAPSHOT_VERSION,
            world: clone_world(&self.world),
            joints: self.joints.clone(),
            substeps: self.substeps,
            timestep: self.timestep,
        };
        bincode::serde::encode_to_vec(&state, bincode::config::standard()).unwrap_or_default()
    }

    /// Restores bytes made by [`Simulation::snapshot`].
    pub fn restore(&mut self, bytes: &[u8]) -> Res<()> {
        let (state, _): (State, usize) =
            bincode::serde::decode_from_slice(bytes, bincode::config::standard()).map_err(|e| PhysicsError::BadSnapshot(format!("{e}")))?;
        if state.version != SNAPSHOT_VERSION {
            return Err(PhysicsError::BadSnapshot(format!("snapshot version {} (this host reads {SNAPSHOT_VERSION})", state.version)));
        }
        self.world = state.world;
        self.joints = state.joints;
        self.substeps = state.substeps;
        self.timestep = state.timestep;
        Ok(())
    }
}

/// A copy of a world's serialisable state (pipelines and CCD workspace start empty).
fn clone_world(w: &PhysicsWorld) -> PhysicsWorld {
    PhysicsWorld {
        gravity: w.gravity,
        integration_parameters: w.integration_parameters,
        islands: w.islands.clone(),
        broad_phase: w.broad_phase.clone(),
        narrow_phase: w.narrow_phase.clone(),
        bodies: w.bodies.clone(),
        colliders: w.colliders.clone(),
        impulse_joints: w.impulse_joints.clone(),
        multibody_joints: w.multibody_joints.clone(),
        soft_bodies: w.soft_bodies.clone(),
        ..PhysicsWorld::default()
    }
}
