// world: reward
// CartPole reward shaping, written in JavaScript: the same reward as the Rust plugin
// `plugins/rewards/cartpole-shaped` (keep the pole upright and the cart centred; a penalty
// when the episode fails), built into a `reward`-world component by componentize-js
// (scripts/componentize-js.mjs; scripts/build-plugins.sh runs it and caches the result).
//
// Parameters (`[reward.params]`): `angle-weight` (0.5), `position-weight` (0.25),
// `fail-penalty` (-1.0).

const THETA_MAX = (12 * 2 * Math.PI) / 360;
const X_MAX = 2.4;
const KNOWN = ["angle-weight", "position-weight", "fail-penalty"];

let weights = null;

// A `result` error: componentize-js returns the thrown value's `payload` as the error.
function refuse(tag, message) {
  const e = new Error(message);
  e.payload = { tag, val: message };
  return e;
}

function real(params, name, fallback) {
  for (const [key, value] of params) {
    if (key !== name) continue;
    if (value.tag === "real" || value.tag === "int") return Number(value.val);
    throw refuse("invalid-params", `parameter \`${name}\` must be a number`);
  }
  return fallback;
}

export const rewardFn = {
  init(spec, params) {
    for (const [key] of params) {
      if (!KNOWN.includes(key)) {
        throw refuse("invalid-params", `unknown parameter \`${key}\` (cartpole-shaped-js knows ${KNOWN.join(", ")})`);
      }
    }
    const obs = spec.observationSpace;
    if (obs.tag !== "box" || obs.val.shape.length !== 1 || obs.val.shape[0] !== 4) {
      throw refuse("invalid-params", `cartpole-shaped-js scores CartPole-like envs (4 observation values), not ${spec.id}`);
    }
    weights = {
      angle: real(params, "angle-weight", 0.5),
      position: real(params, "position-weight", 0.25),
      fail: real(params, "fail-penalty", -1.0),
    };
  },

  compute(batch) {
    if (weights === null) throw refuse("invalid-state", "compute before init");
    const next = batch.nextObservations;
    const out = new Float64Array(batch.numEnvs);
    for (let i = 0; i < batch.numEnvs; i++) {
      if (batch.terminated[i]) {
        out[i] = weights.fail;
        continue;
      }
      const x = next[4 * i] / X_MAX;
      const theta = next[4 * i + 2] / THETA_MAX;
      out[i] = 1 - weights.angle * theta * theta - weights.position * x * x;
    }
    return out;
  },
};
