// Paddock's guest SDK for JavaScript plugins (componentize-js), as thin as the Rust SDK
// (`plugins/sdk`): parameters with checks, spaces and specs, errors, the Rust SDK's random
// generator (xoshiro256++, so a JS env draws exactly what a Rust one would), and an env
// driver: write one env's `reset`/`step`/`observe`, and `exportEnv` gives the whole `env`
// interface — many envs per instance, a vectorised `stepAll` with auto-reset, the episode
// step limit, seeding, and snapshots (the Rust SDK's layout; the env's own state through
// `save`/`load`, by default its own properties as JSON).
//
//   import { Environment, box, discrete, envSpec, exportEnv } from "./paddock_sdk.js";
//   class MyEnv extends Environment { ... }
//   export const env = exportEnv(MyEnv);
//
// componentize-js takes one module: scripts/js/componentize.mjs inlines a relative import
// of this file (the only bundling it does); `paddock plugin new --lang js` copies it.

const MASK = (1n << 64n) - 1n;
const MAGIC = [0x50, 0x44, 0x45, 0x31]; // "PDE1"

// --- errors --------------------------------------------------------------------------------

/** An error the host reports with the plugin's name: `tag` is a `plugin-error` case. */
export function refuse(tag, message) {
  const e = new Error(message);
  e.payload = { tag, val: message };
  return e;
}
export const invalidParams = (m) => refuse("invalid-params", m);
export const invalidAction = (m) => refuse("invalid-action", m);
export const invalidState = (m) => refuse("invalid-state", m);

// --- the generator ---------------------------------------------------------------------------

const rotl = (x, k) => ((x << BigInt(k)) | (x >> BigInt(64 - k))) & MASK;

/** xoshiro256++ seeded by splitmix64: the Rust SDK's `Rng`, draw for draw. */
export class Rng {
  constructor(seed) {
    let x = BigInt.asUintN(64, BigInt(seed ?? 0));
    this.s = [];
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b97f4a7c15n) & MASK;
      let z = x;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
      this.s.push(z ^ (z >> 31n));
    }
  }
  nextU64() {
    const s = this.s;
    const result = (rotl((s[0] + s[3]) & MASK, 23) + s[0]) & MASK;
    const t = (s[1] << 17n) & MASK;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
  /** A uniform draw in [0, 1) with 53 random bits. */
  nextF64() {
    return Number(this.nextU64() >> 11n) * (1 / 2 ** 53);
  }
  /** A uniform draw in [low, high). */
  uniform(low, high) {
    return low + (high - low) * this.nextF64();
  }
  toBytes() {
    const out = new Uint8Array(32);
    const view = new DataView(out.buffer);
    this.s.forEach((w, i) => view.setBigUint64(8 * i, w, true));
    return out;
  }
  static fromBytes(bytes) {
    const r = new Rng(0);
    const view = new DataView(bytes.buffer, bytes.byteOffset, 32);
    r.s = [0, 1, 2, 3].map((i) => view.getBigUint64(8 * i, true));
    return r;
  }
}

// --- parameters ------------------------------------------------------------------------------

/** A plugin's parameters: typed reads whose errors name the key. */
export class Params {
  constructor(pairs, who) {
    this.pairs = pairs ?? [];
    this.who = who ?? "plugin";
  }
  get(name) {
    for (const [key, value] of this.pairs) if (key === name) return value;
    return undefined;
  }
  checkKnown(known) {
    for (const [key] of this.pairs) {
      if (!known.includes(key)) throw invalidParams(`unknown parameter \`${key}\` (${this.who} knows ${known.join(", ") || "none"})`);
    }
  }
  real(name, fallback) {
    const v = this.get(name);
    if (v === undefined) return fallback;
    if (v.tag === "real" || v.tag === "int") return Number(v.val);
    throw invalidParams(`parameter \`${name}\` must be a number`);
  }
  flag(name, fallback) {
    const v = this.get(name);
    if (v === undefined) return fallback;
    if (v.tag === "bool") return v.val;
    throw invalidParams(`parameter \`${name}\` must be true or false`);
  }
  reals(name, length) {
    const v = this.get(name);
    if (v === undefined) return undefined;
    if (v.tag !== "reals") throw invalidParams(`parameter \`${name}\` must be a list of numbers`);
    const values = Array.from(v.val, Number);
    if (length !== undefined && values.length !== length) throw invalidParams(`parameter \`${name}\` must be ${length} numbers, got ${values.length}`);
    return values;
  }
  positive(name, fallback) {
    const x = this.real(name, fallback);
    if (!(x > 0)) throw invalidParams(`\`${name}\` must be above 0, got ${x}`);
    return x;
  }
}

// --- spaces and specs ------------------------------------------------------------------------

export const box = (low, high) => ({ tag: "box", val: { low: Float32Array.from(low), high: Float32Array.from(high), shape: [low.length] } });
export const discrete = (n, start = 0) => ({ tag: "discrete", val: { n, start: BigInt(start) } });

function flatLen(space) {
  if (space.tag === "discrete") return 1;
  if (space.tag === "box") return space.val.shape.reduce((a, b) => a * b, 1);
  return space.val.nvec.length;
}

/** An env's spec (the SDK applies `maxEpisodeSteps` for you). */
export function envSpec(id, observationSpace, actionSpace, opts = {}) {
  return {
    id,
    observationSpace,
    actionSpace,
    maxEpisodeSteps: opts.maxEpisodeSteps,
    infoFeatures: opts.infoFeatures ?? [],
    rewardThreshold: opts.rewardThreshold,
    maxEnvsPerInstance: opts.maxEnvsPerInstance ?? 1024,
    supportsSnapshot: opts.supportsSnapshot ?? true,
  };
}

/** The action of a `Discrete(n)` space as an integer, or an `invalid-action` error. */
export function discreteAction(action, n, who = "env") {
  if (action.length !== 1) throw invalidAction(`${who}: expected 1 action value, got ${action.length}`);
  const a = action[0];
  if (!(Number.isInteger(a) && a >= 0 && a < n)) throw invalidAction(`action ${a} is not in Discrete(${n})`);
  return a;
}

// --- envs --------------------------------------------------------------------------------------

/** One env: implement `static spec(params)`, `constructor(params)`, `reset(rng, options)`,
 * `step(action, rng) -> [reward, terminated]`, `observe() -> array`; optionally `infos()`,
 * `truncation() -> string | null`, `save() -> Uint8Array` / `load(bytes)`. */
export class Environment {
  infos() {
    return [];
  }
  truncation() {
    return null;
  }
  save() {
    return new TextEncoder().encode(JSON.stringify(this));
  }
  load(bytes) {
    Object.assign(this, JSON.parse(new TextDecoder().decode(bytes)));
  }
}

/** The `env` interface over envs of class `Cls` (export it as `env`). */
export function exportEnv(Cls) {
  const who = Cls.NAME ?? Cls.name;
  const st = { spec: null, slots: null, obs: 0, act: 0 };
  const params = (pairs) => new Params(pairs, who);
  const slots = () => {
    if (st.slots === null) throw invalidState("call init first");
    return st.slots;
  };
  const slot = (i) => {
    const s = slots();
    if (i >= s.length) throw invalidState(`env index ${i} out of range (0..${s.length})`);
    return s[i];
  };
  const observe = (e) => {
    const o = e.observe();
    if (o.length !== st.obs) throw invalidState(`${st.spec.id}: observe gave ${o.length} values, the spec says ${st.obs}`);
    return o;
  };
  const cut = (e, i) => {
    const reason = e.truncation();
    if (reason) {
      console.log(`env ${i}: episode truncated: ${reason}`);
      return true;
    }
    return false;
  };
  return {
    spec(p) {
      return Cls.spec(params(p));
    },
    init(p, seeds) {
      const spec = Cls.spec(params(p));
      const most = Math.max(spec.maxEnvsPerInstance, 1);
      if (seeds.length === 0 || seeds.length > most) throw invalidParams(`${spec.id} hosts 1 to ${most} envs per instance, asked for ${seeds.length}`);
      st.spec = spec;
      st.obs = flatLen(spec.observationSpace);
      st.act = flatLen(spec.actionSpace);
      st.slots = Array.from(seeds, (seed) => ({ env: new Cls(params(p)), rng: new Rng(seed), elapsed: 0, live: false }));
    },
    reset(index, seed, options) {
      const s = slot(index);
      if (seed !== undefined && seed !== null) s.rng = new Rng(seed);
      s.env.reset(s.rng, params(options));
      s.elapsed = 0;
      s.live = true;
      return { observation: Float32Array.from(observe(s.env)), infos: Float64Array.from(s.env.infos()) };
    },
    step(index, action) {
      if (action.length !== st.act) throw invalidAction(`${st.spec.id}: expected ${st.act} action values, got ${action.length}`);
      const s = slot(index);
      if (!s.live) throw invalidState(`env ${index}: step before reset, or after its episode ended`);
      const [reward, terminated] = s.env.step(Array.from(action), s.rng);
      s.elapsed += 1;
      const limit = st.spec.maxEpisodeSteps;
      const truncated = cut(s.env, index) | (limit !== undefined && limit !== null && s.elapsed >= limit);
      s.live = !(terminated || truncated);
      return { observation: Float32Array.from(observe(s.env)), reward, terminated: !!terminated, truncated: !!truncated, infos: Float64Array.from(s.env.infos()) };
    },
    resetAll() {
      const out = [];
      const empty = params([]);
      for (const s of slots()) {
        s.env.reset(s.rng, empty);
        s.elapsed = 0;
        s.live = true;
        out.push(...observe(s.env));
      }
      return Float32Array.from(out);
    },
    stepAll(actions) {
      const ss = slots();
      const act = st.act;
      if (actions.length !== ss.length * act) throw invalidAction(`${st.spec.id}: expected ${ss.length * act} action values, got ${actions.length}`);
      const limit = st.spec.maxEpisodeSteps;
      const empty = params([]);
      const observations = [];
      const rewards = new Float64Array(ss.length);
      const infos = [];
      const ended = [];
      const finals = [];
      ss.forEach((s, i) => {
        if (!s.live) throw invalidState(`env ${i}: step-all before reset-all`);
        const [reward, terminated] = s.env.step(Array.from(actions.slice(i * act, (i + 1) * act)), s.rng);
        s.elapsed += 1;
        const trunc = !!(cut(s.env, i) | (limit !== undefined && limit !== null && s.elapsed >= limit));
        infos.push(...s.env.infos());
        let obs = observe(s.env);
        if (terminated || trunc) {
          ended.push({ env: i, terminated: !!terminated, truncated: trunc });
          finals.push(...obs);
          s.env.reset(s.rng, empty);
          s.elapsed = 0;
          obs = observe(s.env);
        }
        observations.push(...obs);
        rewards[i] = reward;
      });
      return { observations: Float32Array.from(observations), rewards, infos: Float64Array.from(infos), ended, finalObservations: Float32Array.from(finals) };
    },
    snapshot(index) {
      const s = slot(index);
      const own = s.env.save();
      const out = new Uint8Array(41 + own.length);
      out.set(MAGIC, 0);
      out.set(s.rng.toBytes(), 4);
      new DataView(out.buffer).setUint32(36, s.elapsed, true);
      out[40] = s.live ? 1 : 0;
      out.set(own, 41);
      return out;
    },
    restore(index, state) {
      const s = slot(index);
      const bytes = Uint8Array.from(state);
      if (bytes.length < 41 || MAGIC.some((b, i) => bytes[i] !== b)) throw invalidParams("snapshot bytes are not from this SDK version");
      s.env.load(bytes.slice(41));
      s.rng = Rng.fromBytes(bytes.slice(4, 36));
      s.elapsed = new DataView(bytes.buffer).getUint32(36, true);
      s.live = bytes[40] !== 0;
    },
  };
}
