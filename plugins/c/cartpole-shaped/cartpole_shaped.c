// world: reward
// CartPole reward shaping, written in C on the guest SDK header (plugins/c/sdk/paddock.h):
// the same reward as the Rust plugin `plugins/rewards/cartpole-shaped` (keep the pole
// upright and the cart centred; a penalty when the episode fails). Built by
// scripts/build-plugins.sh: `wit-bindgen c` bindings, clang + wasi-libc, wasm-tools.
//
// Parameters (`[reward.params]`): `angle-weight` (0.5), `position-weight` (0.25),
// `fail-penalty` (-1.0).
#include "reward.h"
#include "paddock.h"

#include <math.h>

#define THETA_MAX (12.0 * 2.0 * M_PI / 360.0)
#define X_MAX 2.4

static bool ready = false;
static double angle_weight, position_weight, fail_penalty;

bool exports_paddock_rl_reward_fn_init(exports_paddock_rl_reward_fn_env_spec_t *spec, exports_paddock_rl_reward_fn_params_t *params,
                                       exports_paddock_rl_reward_fn_plugin_error_t *err) {
    static const char *const known[] = {"angle-weight", "position-weight", "fail-penalty"};
    bool ok = pd_check_known(params, known, 3, "cartpole-shaped-c", err) && pd_param_real(params, "angle-weight", 0.5, &angle_weight, err) &&
              pd_param_real(params, "position-weight", 0.25, &position_weight, err) &&
              pd_param_real(params, "fail-penalty", -1.0, &fail_penalty, err);
    if (ok) {
        paddock_rl_types_space_t *obs = &spec->observation_space;
        if (obs->tag != PADDOCK_RL_TYPES_SPACE_BOX || obs->val.box.shape.len != 1 || obs->val.box.shape.ptr[0] != 4) {
            char message[200];
            snprintf(message, sizeof message, "cartpole-shaped-c scores CartPole-like envs (4 observation values), not %.*s", (int)spec->id.len,
                     (const char *)spec->id.ptr);
            ok = pd_fail(err, PD_INVALID_PARAMS, message);
        }
    }
    ready = ok;
    exports_paddock_rl_reward_fn_params_free(params);
    exports_paddock_rl_reward_fn_env_spec_free(spec);
    return ok;
}

bool exports_paddock_rl_reward_fn_compute(exports_paddock_rl_reward_fn_transitions_t *batch, reward_list_f64_t *ret,
                                          exports_paddock_rl_reward_fn_plugin_error_t *err) {
    bool ok = ready || pd_fail(err, PD_INVALID_STATE, "compute before init");
    uint32_t n = batch->num_envs;
    if (ok && (batch->next_observations.len != 4 * (size_t)n || batch->terminated.len != n))
        ok = pd_fail(err, PD_INVALID_PARAMS, "a batch of CartPole transitions has 4 observation values and one flag per env");
    if (ok) {
        ret->ptr = malloc(n ? n * sizeof(double) : 1);
        ret->len = n;
        for (uint32_t i = 0; i < n; i++) {
            if (batch->terminated.ptr[i]) {
                ret->ptr[i] = fail_penalty;
                continue;
            }
            double x = (double)batch->next_observations.ptr[4 * i] / X_MAX;
            double theta = (double)batch->next_observations.ptr[4 * i + 2] / THETA_MAX;
            ret->ptr[i] = 1.0 - angle_weight * theta * theta - position_weight * x * x;
        }
    }
    exports_paddock_rl_reward_fn_transitions_free(batch);
    return ok;
}
