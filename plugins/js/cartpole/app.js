// world: environment
// CartPole-v1 written in JavaScript on the guest SDK (plugins/js/sdk/paddock_sdk.js): the
// same env as the Rust plugin `plugins/envs/cartpole`, step for step — the same dynamics,
// seeded start states (the SDK's generator is the Rust SDK's) and snapshot layout — built
// into an `environment` component by componentize-js (scripts/js/componentize.mjs inlines
// the SDK import).
//
// Parameters: `sutton-barto-reward` (bool), `initial-state` (4 reals, used at every reset).
// Reset options: `initial-state`, `low`, `high` (bounds of the uniform start, default ±0.05).
import { Environment, box, discrete, discreteAction, envSpec, exportEnv, invalidParams } from "../sdk/paddock_sdk.js";

const GRAVITY = 9.8;
const MASS_CART = 1.0;
const MASS_POLE = 0.1;
const TOTAL_MASS = MASS_POLE + MASS_CART;
const LENGTH = 0.5;
const POLEMASS_LENGTH = MASS_POLE * LENGTH;
const FORCE_MAG = 10.0;
const TAU = 0.02;
const THETA_THRESHOLD = (12.0 * 2.0 * Math.PI) / 360.0;
const X_THRESHOLD = 2.4;
const PARAMS = ["sutton-barto-reward", "initial-state"];

class CartPole extends Environment {
  static NAME = "cartpole-js";

  static spec(params) {
    params.checkKnown(PARAMS);
    const suttonBarto = params.flag("sutton-barto-reward", false);
    const high = [X_THRESHOLD * 2.0, Infinity, THETA_THRESHOLD * 2.0, Infinity];
    return envSpec("CartPole-v1", box(high.map((h) => -h), high), discrete(2), {
      maxEpisodeSteps: 500,
      rewardThreshold: suttonBarto ? 0.0 : 475.0,
      maxEnvsPerInstance: 4096,
    });
  }

  constructor(params) {
    super();
    params.checkKnown(PARAMS);
    this.state = [0, 0, 0, 0];
    this.suttonBarto = params.flag("sutton-barto-reward", false);
    this.initial = params.reals("initial-state", 4);
  }

  reset(rng, options) {
    options.checkKnown(["initial-state", "low", "high"]);
    const start = options.reals("initial-state", 4) ?? this.initial;
    if (start !== undefined) {
      this.state = [...start];
      return;
    }
    const low = options.real("low", -0.05);
    const high = options.real("high", 0.05);
    if (low > high) throw invalidParams(`reset option low (${low}) > high (${high})`);
    this.state = [0, 1, 2, 3].map(() => rng.uniform(low, high));
  }

  step(action, rng) {
    const a = discreteAction(action, 2, CartPole.NAME);
    const [x, xDot, theta, thetaDot] = this.state;
    const force = a === 1 ? FORCE_MAG : -FORCE_MAG;
    const costheta = Math.cos(theta);
    const sintheta = Math.sin(theta);
    const temp = (force + POLEMASS_LENGTH * (thetaDot * thetaDot) * sintheta) / TOTAL_MASS;
    const thetaacc = (GRAVITY * sintheta - costheta * temp) / (LENGTH * (4.0 / 3.0 - (MASS_POLE * (costheta * costheta)) / TOTAL_MASS));
    const xacc = temp - (POLEMASS_LENGTH * thetaacc * costheta) / TOTAL_MASS;
    this.state = [x + TAU * xDot, xDot + TAU * xacc, theta + TAU * thetaDot, thetaDot + TAU * thetaacc];
    const [nx, , nt] = this.state;
    const terminated = nx < -X_THRESHOLD || nx > X_THRESHOLD || nt < -THETA_THRESHOLD || nt > THETA_THRESHOLD;
    const reward = !this.suttonBarto ? 1.0 : terminated ? -1.0 : 0.0;
    return [reward, terminated];
  }

  observe() {
    return this.state;
  }

  // The four reals, as the Rust env saves them.
  save() {
    return new Uint8Array(Float64Array.from(this.state).buffer);
  }

  load(bytes) {
    if (bytes.length !== 32) throw invalidParams(`a cartpole-js snapshot holds 32 bytes, not ${bytes.length}`);
    this.state = Array.from(new Float64Array(Uint8Array.from(bytes).buffer));
  }
}

export const env = exportEnv(CartPole);
