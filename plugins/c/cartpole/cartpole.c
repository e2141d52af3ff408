// world: environment
// CartPole-v1 written in C against the `environment` world: the same dynamics as the Rust
// plugin `plugins/envs/cartpole` (Gymnasium's classic-control CartPole, Euler integration,
// float64 state, float32 observations), built with Debian's clang + wasi-libc, bindings from
// `wit-bindgen c`, and `wasm-tools component new --adapt` (scripts/build-plugins.sh).
//
// Parameters (`[env.params]`): `initial-state` (4 reals: start every episode there instead
// of uniform(-0.05, 0.05)). Reset options: `initial-state`, `low`, `high`.
//
// The canonical ABI hands arguments over to the callee (freed here) and frees what the
// callee returns after the call (allocate returned lists with malloc).

#include "environment.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRAVITY 9.8
#define MASS_CART 1.0
#define MASS_POLE 0.1
#define TOTAL_MASS (MASS_POLE + MASS_CART)
#define LENGTH 0.5
#define POLEMASS_LENGTH (MASS_POLE * LENGTH)
#define FORCE_MAG 10.0
#define TAU 0.02
#define THETA_THRESHOLD (12.0 * 2.0 * M_PI / 360.0)
#define X_THRESHOLD 2.4
#define MAX_STEPS 500
#define MAX_ENVS 4096

typedef struct {
    double state[4];
    uint32_t steps;
    uint64_t rng; // splitmix64 state
} env_t;

static env_t *envs = NULL;
static uint32_t num_envs = 0;
static bool has_initial = false;
static double initial[4];

// ---- helpers -------------------------------------------------------------------------

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s, double low, double high) {
    return low + (high - low) * ((double)(splitmix64(s) >> 11) * 0x1.0p-53);
}

static void set_string(environment_string_t *out, const char *text) {
    size_t n = strlen(text);
    out->ptr = malloc(n ? n : 1);
    memcpy(out->ptr, text, n);
    out->len = n;
}

static bool fail(paddock_rl_types_plugin_error_t *err, uint8_t tag, const char *message) {
    err->tag = tag;
    set_string(&err->val.invalid_params, message); // every case holds one string
    return false;
}

static bool key_is(const environment_string_t *k, const char *name) {
    return k->len == strlen(name) && memcmp(k->ptr, name, k->len) == 0;
}

// Reads `initial-state` (4 reals) and checks the names against `known`; false on error.
static bool read_params(paddock_rl_types_params_t *params, const char *const *known, size_t nknown, bool *found,
                        double out[4], double *low, double *high, paddock_rl_types_plugin_error_t *err) {
    char message[160];
    *found = false;
    for (size_t i = 0; i < params->len; i++) {
        environment_string_t *k = &params->ptr[i].f0;
        paddock_rl_types_value_t *v = &params->ptr[i].f1;
        bool ok = false;
        for (size_t j = 0; j < nknown; j++) ok |= key_is(k, known[j]);
        if (!ok) {
            snprintf(message, sizeof message, "unknown parameter `%.*s` (cartpole-c knows initial-state, and low/high as reset options)",
                     (int)k->len, (const char *)k->ptr);
            return fail(err, PADDOCK_RL_TYPES_PLUGIN_ERROR_INVALID_PARAMS, message);
        }
        if (key_is(k, "initial-state")) {
            if (v->tag != PADDOCK_RL_TYPES_VALUE_REALS || v->val.reals.len != 4)
                return fail(err, PADDOCK_RL_TYPES_PLUGIN_ERROR_INVALID_PARAMS, "parameter `initial-state` must be 4 reals");
            for (int j = 0; j < 4; j++) out[j] = v->val.reals.ptr[j];
            *found = true;
        } else {
            double x;
            if (v->tag == PADDOCK_RL_TYPES_VALUE_REAL) x = v->val.real;
            else if (v->tag == PADDOCK_RL_TYPES_VALUE_INT) x = (double)v->val.int_;
            else return fail(err, PADDOCK_RL_TYPES_PLUGIN_ERROR_INVALID_PARAMS, "reset options `low`/`high` must be numbers");
            if (key_is(k, "low")) *low = x; else *high = x;
        }
    }
    return true;
}

// Gymnasium's CartPole step; returns whether the pole fell or the cart left the track.
static bool dynamics(double s[4], int action) {
    double x = s[0], x_dot = s[1], theta = s[2], theta_dot = s[3];
    double force = action == 1 ? FORCE_MAG : -FORCE_MAG;
    double sintheta = sin(theta), costheta = cos(theta);
    double temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS;
    double thetaacc = (GRAVITY * sintheta - costheta * temp) / (LENGTH * (4.0 / 3.0 - MASS_POLE * (costheta * costheta) / TOTAL_MASS));
    double xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS;
    s[0] = x + TAU * x_dot;
    s[1] = x_dot + TAU * xacc;
    s[2] = theta + TAU * theta_dot;
    s[3] = theta_dot + TAU * thetaacc;
    return s[0] < -X_THRESHOLD || s[0] > X_THRESHOLD || s[2] < -THETA_THRESHOLD || s[2] > THETA_THRESHOLD;
}

static void reset_env(env_t *e, const double *start, double low, double high) {
    for (int j = 0; j < 4; j++) e->state[j] = start ? start[j] : uniform(&e->rng, low, high);
    e->steps = 0;
}

static void observe(const env_t *e, float *out) {
    for (int j = 0; j < 4; j++) out[j] = (float)e->state[j];
}

static bool action_of(float a, int *out, paddock_rl_types_plugin_error_t *err) {
    if (!(a == 0.0f || a == 1.0f)) {
        char message[96];
        snprintf(message, sizeof message, "action %g is not in Discrete(2)", (double)a);
        return fail(err, PADDOCK_RL_TYPES_PLUGIN_ERROR_INVALID_ACTION, message);
    }
    *out = (int)a;
    return true;
}

static float *alloc_f32(size_t n) { return malloc(n ? n * sizeof(float) : 1); }
static double *alloc_f64(size_t n) { return malloc(n ? n * sizeof(double) : 1); }

// ---- the `env` interface --------------------------------------------------------------

bool exports_paddock_rl_env_spec(exports_paddock_rl_env_params_t *params, exports_paddock_rl_env_env_spec_t *ret,
                                 exports_paddock_rl_env_plugin_error_t *err) {
    static const char *const known[] = {"initial-state"};
    bool found;
    double s[4], low = 0, high = 0;
    bool ok = read_params(params, known, 1, &found, s, &low, &high, err);
    exports_paddock_rl_env_params_free(params);
    if (!ok) return false;
    memset(ret, 0, sizeof *ret);
    set_string(&ret->id, "CartPole-v1");
    float high_v[4] = {(float)(X_THRESHOLD * 2.0), INFINITY, (float)(THETA_THRESHOLD * 2.0), INFINITY};
    ret->observation_space.tag = PADDOCK_RL_TYPES_SPACE_BOX;
    paddock_rl_types_box_space_t *b = &ret->observation_space.val.box;
    b->low.ptr = alloc_f32(4), b->low.len = 4;
    b->high.ptr = alloc_f32(4), b->high.len = 4;
    for (int j = 0; j < 4; j++) b->low.ptr[j] = -high_v[j], b->high.ptr[j] = high_v[j];
    b->shape.ptr = malloc(sizeof(uint32_t)), b->shape.len = 1, b->shape.ptr[0] = 4;
    ret->action_space.tag = PADDOCK_RL_TYPES_SPACE_DISCRETE;
    ret->action_space.val.discrete.n = 2;
    ret->action_space.val.discrete.start = 0;
    ret->max_episode_steps.is_some = true, ret->max_episode_steps.val = MAX_STEPS;
    ret->info_features.ptr = NULL, ret->info_features.len = 0;
    ret->reward_threshold.is_some = true, ret->reward_threshold.val = 475.0;
    ret->max_envs_per_instance = MAX_ENVS;
    ret->supports_snapshot = true;
    return true;
}

bool exports_paddock_rl_env_init(exports_paddock_rl_env_params_t *params, environment_list_u64_t *seeds,
                                 exports_paddock_rl_env_plugin_error_t *err) {
    static const char *const known[] = {"initial-state"};
    double low = 0, high = 0;
    bool ok = read_params(params, known, 1, &has_initial, initial, &low, &high, err);
    exports_paddock_rl_env_params_free(params);
    if (ok && (seeds->len == 0 || seeds->len > MAX_ENVS)) ok = fail(err, PADDOCK_RL_TYPES_PLUGIN_ERROR_INVALID_PARAMS, "init needs 1 to 4096 seeds");
    if (ok) {
        free(envs);
        num_envs = (uint32_t)seeds->len;
        envs = calloc(num_envs, sizeof(env_t));
        for (uint32_t i = 0; i < num_envs; i++) envs[i].rng = seeds->ptr[i];
    }
    environment_list_u64_free(seeds);
    return ok;
}

static bool check_index(uint32_t index, paddock_rl_types_plugin_error_t *err) {
    if (envs == NULL) return fail(err, PADDOCK_RL_TYPES_PLUGIN_ERROR_INVALID_STATE, "call init first");
    if (index >= num_envs) return fail(err, PADDOCK_RL_TYPES_PLUGIN_ERROR_INVALID_PARAMS, "env index out of range");
    return true;
}

bool exports_paddock_rl_env_reset(uint32_t index, uint64_t *maybe_seed, exports_paddock_rl_env_params_t *options,
                                  exports_paddock_rl_env_reset_result_t *ret, exports_paddock_rl_env_plugin_error_t *err) {
    static const char *const known[] = {"initial-state", "low", "high"};
    bool found;
    double s[4], low = -0.05, high = 0.05;
    bool ok = check_index(index, err) && read_params(options, known, 3, &found, s, &low, &high, err);
    exports_paddock_rl_env_params_free(options);
    if (!ok) return false;
    if (low > high) return fail(err, PADDOCK_RL_TYPES_PLUGIN_ERROR_INVALID_PARAMS, "reset option low > high");
    env_t *e = &envs[index];
    if (maybe_seed) e->rng = *maybe_seed;
    reset_env(e, found ? s : (has_initial ? initial : NULL), low, high);
    ret->observation.ptr = alloc_f32(4), ret->observation.len = 4;
    observe(e, ret->observation.ptr);
    ret->infos.ptr = NULL, ret->infos.len = 0;
    return true;
}

bool exports_paddock_rl_env_step(uint32_t index, environment_list_f32_t *action, exports_paddock_rl_env_step_result_t *ret,
                                 exports_paddock_rl_env_plugin_error_t *err) {
    int a = 0;
    bool ok = check_index(index, err);
    if (ok && action->len != 1) ok = fail(err, PADDOCK_RL_TYPES_PLUGIN_ERROR_INVALID_ACTION, "expected 1 action value");
    if (ok) ok = action_of(action->ptr[0], &a, err);
    environment_list_f32_free(action);
    if (!ok) return false;
    env_t *e = &envs[index];
    ret->terminated = dynamics(e->state, a);
    e->steps++;
    ret->truncated = !ret->terminated && e->steps >= MAX_STEPS;
    ret->reward = 1.0;
    ret->observation.ptr = alloc_f32(4), ret->observation.len = 4;
    observe(e, ret->observation.ptr);
    ret->infos.ptr = NULL, ret->infos.len = 0;
    return true;
}

bool exports_paddock_rl_env_reset_all(environment_list_f32_t *ret, exports_paddock_rl_env_plugin_error_t *err) {
    if (envs == NULL) return fail(err, PADDOCK_RL_TYPES_PLUGIN_ERROR_INVALID_STATE, "call init first");
    ret->ptr = alloc_f32(4 * (size_t)num_envs), ret->len = 4 * (size_t)num_envs;
    for (uint32_t i = 0; i < num_envs; i++) {
        reset_env(&envs[i], has_initial ? initial : NULL, -0.05, 0.05);
        observe(&envs[i], ret->ptr + 4 * i);
    }
    return true;
}

// Steps every env; an env whose episode ended is reset (autoreset) and its final
// observation goes into `final-observations`.
bool exports_paddock_rl_env_step_all(environment_list_f32_t *actions, exports_paddock_rl_env_batch_step_t *ret,
                                     exports_paddock_rl_env_plugin_error_t *err) {
    bool ok = envs != NULL || fail(err, PADDOCK_RL_TYPES_PLUGIN_ERROR_INVALID_STATE, "call init first");
    if (ok && actions->len != num_envs) ok = fail(err, PADDOCK_RL_TYPES_PLUGIN_ERROR_INVALID_ACTION, "expected one action per env");
    int *acts = ok ? malloc(num_envs * sizeof(int)) : NULL;
    for (uint32_t i = 0; ok && i < num_envs; i++) ok = action_of(actions->ptr[i], &acts[i], err);
    environment_list_f32_free(actions);
    if (!ok) {
        free(acts);
        return false;
    }
    ret->observations.ptr = alloc_f32(4 * (size_t)num_envs), ret->observations.len = 4 * (size_t)num_envs;
    ret->rewards.ptr = alloc_f64(num_envs), ret->rewards.len = num_envs;
    ret->infos.ptr = NULL, ret->infos.len = 0;
    ret->ended.ptr = malloc(num_envs * sizeof(paddock_rl_types_episode_end_t)), ret->ended.len = 0;
    ret->final_observations.ptr = alloc_f32(4 * (size_t)num_envs), ret->final_observations.len = 0;
    for (uint32_t i = 0; i < num_envs; i++) {
        env_t *e = &envs[i];
        bool terminated = dynamics(e->state, acts[i]);
        e->steps++;
        bool truncated = !terminated && e->steps >= MAX_STEPS;
        ret->rewards.ptr[i] = 1.0;
        if (terminated || truncated) {
            paddock_rl_types_episode_end_t *end = &ret->ended.ptr[ret->ended.len++];
            end->env = i, end->terminated = terminated, end->truncated = truncated;
            observe(e, ret->final_observations.ptr + ret->final_observations.len);
            ret->final_observations.len += 4;
            reset_env(e, has_initial ? initial : NULL, -0.05, 0.05);
        }
        observe(e, ret->observations.ptr + 4 * i);
    }
    free(acts);
    return true;
}

// A snapshot: the 4 state values, the step count and the RNG state, little-endian.
#define SNAPSHOT_LEN (4 * 8 + 4 + 8)

bool exports_paddock_rl_env_snapshot(uint32_t index, environment_list_u8_t *ret, exports_paddock_rl_env_plugin_error_t *err) {
    if (!check_index(index, err)) return false;
    env_t *e = &envs[index];
    ret->ptr = malloc(SNAPSHOT_LEN), ret->len = SNAPSHOT_LEN;
    memcpy(ret->ptr, e->state, 32); // wasm32 is little-endian
    memcpy(ret->ptr + 32, &e->steps, 4);
    memcpy(ret->ptr + 36, &e->rng, 8);
    return true;
}

bool exports_paddock_rl_env_restore(uint32_t index, environment_list_u8_t *state, exports_paddock_rl_env_plugin_error_t *err) {
    bool ok = check_index(index, err);
    if (ok && state->len != SNAPSHOT_LEN) ok = fail(err, PADDOCK_RL_TYPES_PLUGIN_ERROR_INVALID_STATE, "snapshot is not a cartpole-c state (44 bytes)");
    if (ok) {
        env_t *e = &envs[index];
        memcpy(e->state, state->ptr, 32);
        memcpy(&e->steps, state->ptr + 32, 4);
        memcpy(&e->rng, state->ptr + 36, 8);
    }
    environment_list_u8_free(state);
    return ok;
}
