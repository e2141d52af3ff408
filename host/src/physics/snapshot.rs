//! Snapshots of a [`Simulation`]: the whole world as bytes (bincode), and back.
//!
//! Mesh shapes are left out: a convex hull or decomposition of a detailed mesh is most of a
//! robot world's bytes (a Kuka env's snapshot was 380 kB, 116 envs made a 44 MB checkpoint)
//! and never changes, and a snapshot is only restored into a world built the same way. So
//! each such shape's encoding is replaced by its SHA-256 ([`Packed`]), and restore puts the
//! restoring world's own shape with that hash back — byte for byte the encoding that was
//! taken, so a restored world is bit-identical. A world that lacks the shape (its mesh file
//! changed) refuses the snapshot by name.

use super::{PhysicsError, Res, SNAPSHOT_VERSION, Simulation, State};
use rapier3d::prelude::*;
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// What a packed snapshot starts with (a plain one starts with its small version number).
const MAGIC: &[u8; 8] = b"PDKSNAP\x01";

/// Shapes smaller than this are left in the snapshot (boxes, balls, small hulls).
const LEAVE_OUT_FROM: usize = 1024;

/// A snapshot with its mesh shapes left out: raw bytes and shape hashes, in order.
#[derive(serde::Serialize, serde::Deserialize)]
enum Segment {
    Bytes(Vec<u8>),
    Shape([u8; 32]),
}

/// A shape's encoding and its hash.
type Encoded = Arc<(Vec<u8>, [u8; 32])>;

/// Encodings of the shapes seen, by the address of their shared data. An entry holds a weak
/// reference, so the address is not reused while it is here; entries of dropped shapes (an
/// env's rebuilt world) are swept out as the map grows.
static ENCODED: LazyLock<Mutex<HashMap<usize, Seen>>> = LazyLock::new(Default::default);

/// A shape seen: a weak reference to it and its encoding.
type Seen = (std::sync::Weak<dyn Shape>, Encoded);

fn encoded(shape: &SharedShape) -> Option<Encoded> {
    if shape.as_ball().is_some() || shape.as_cuboid().is_some() || shape.as_capsule().is_some() || shape.as_cylinder().is_some() {
        return None;
    }
    let key = Arc::as_ptr(&shape.0) as *const () as usize;
    let mut map = ENCODED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((w, e)) = map.get(&key)
        && w.strong_count() > 0
    {
        return Some(e.clone());
    }
    let bytes = bincode::serde::encode_to_vec(shape, bincode::config::standard()).ok()?;
    let hash: [u8; 32] = sha2::Sha256::digest(&bytes).into();
    let e = Arc::new((bytes, hash));
    if map.len() >= 256 && map.len().is_power_of_two() {
        map.retain(|_, (w, _)| w.strong_count() > 0);
    }
    map.insert(key, (Arc::downgrade(&shape.0), e.clone()));
    Some(e)
}

impl Simulation {
    /// The mesh shapes of this world worth leaving out of a snapshot, in collider order.
    fn large_shapes(&self) -> Vec<Encoded> {
        self.world.colliders.iter().filter_map(|(_, c)| encoded(c.shared_shape())).filter(|e| e.0.len() >= LEAVE_OUT_FROM).collect()
    }

    /// The whole world as bytes, its mesh shapes by hash.
    pub fn snapshot(&self) -> Vec<u8> {
        let state = State {
            version: SNAPSHOT_VERSION,
            world: clone_world(&self.world),
            joints: self.joints.clone(),
            substeps: self.substeps,
            timestep: self.timestep,
        };
        let bytes = bincode::serde::encode_to_vec(&state, bincode::config::standard()).unwrap_or_default();
        pack(&bytes, &self.large_shapes())
    }

    /// Restores bytes made by [`Simulation::snapshot`] (or by a host that kept its shapes in).
    pub fn restore(&mut self, bytes: &[u8]) -> Res<()> {
        let unpacked;
        let bytes = match bytes.strip_prefix(MAGIC) {
            Some(rest) => {
                unpacked = unpack(rest, &self.large_shapes())?;
                &unpacked[..]
            }
            None => bytes,
        };
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

/// `bytes` with each of `shapes` replaced by its hash where it occurs (in order: the
/// colliders are encoded in the order they are listed).
fn pack(bytes: &[u8], shapes: &[Encoded]) -> Vec<u8> {
    let mut segments = Vec::new();
    let mut at = 0;
    for s in shapes {
        let Some(found) = memchr::memmem::find(&bytes[at..], &s.0) else { continue };
        if found > 0 {
            segments.push(Segment::Bytes(bytes[at..at + found].to_vec()));
        }
        segments.push(Segment::Shape(s.1));
        at += found + s.0.len();
    }
    if segments.is_empty() {
        return bytes.to_vec();
    }
    segments.push(Segment::Bytes(bytes[at..].to_vec()));
    let mut out = MAGIC.to_vec();
    out.extend(bincode::serde::encode_to_vec(&segments, bincode::config::standard()).unwrap_or_default());
    out
}

/// The bytes [`pack`] packed, with the shapes of this world (`shapes`) put back.
fn unpack(packed: &[u8], shapes: &[Encoded]) -> Res<Vec<u8>> {
    let (segments, _): (Vec<Segment>, usize) =
        bincode::serde::decode_from_slice(packed, bincode::config::standard()).map_err(|e| PhysicsError::BadSnapshot(format!("{e}")))?;
    let mut out = Vec::new();
    for s in segments {
        match s {
            Segment::Bytes(b) => out.extend_from_slice(&b),
            Segment::Shape(hash) => {
                let shape = shapes.iter().find(|s| s.1 == hash).ok_or_else(|| {
                    PhysicsError::BadSnapshot(format!(
                        "the snapshot's world has a mesh shape (sha256 {}) this world does not: it was built from other meshes",
                        hash.iter().take(6).map(|b| format!("{b:02x}")).collect::<String>()
                    ))
                })?;
                out.extend_from_slice(&shape.0);
            }
        }
    }
    Ok(out)
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
