// Paddock's guest SDK for C plugins: small helpers over the bindings `wit-bindgen c`
// generates for any world (include it after your world's header). Strings, errors that the
// host shows with the plugin's name, and parameter reads whose errors name the key.
//
//   #include "reward.h"
//   #include "paddock.h"
//
//   double scale;
//   if (!pd_check_known(params, known, 1, "my-reward", err)) return false;
//   if (!pd_param_real(params, "scale", 1.0, &scale, err)) return false;
//
// scripts/build-plugins.sh puts this directory on the include path of every C plugin;
// `paddock plugin new --lang c` copies the header into the project.
#ifndef PADDOCK_H
#define PADDOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Error tags (the `plugin-error` variant's cases, in order).
#define PD_INVALID_PARAMS PADDOCK_RL_TYPES_PLUGIN_ERROR_INVALID_PARAMS
#define PD_INVALID_ACTION PADDOCK_RL_TYPES_PLUGIN_ERROR_INVALID_ACTION
#define PD_INVALID_STATE PADDOCK_RL_TYPES_PLUGIN_ERROR_INVALID_STATE
#define PD_UNSUPPORTED PADDOCK_RL_TYPES_PLUGIN_ERROR_UNSUPPORTED
#define PD_FAILED PADDOCK_RL_TYPES_PLUGIN_ERROR_FAILED

// Sets a generated string (any world's `*_string_t`) to a copy of `text`; the host frees it.
#define PD_SET_STRING(out, text)                                                                                       \
    do {                                                                                                               \
        const char *pd_text_ = (text);                                                                                 \
        size_t pd_n_ = strlen(pd_text_);                                                                               \
        (out)->ptr = malloc(pd_n_ ? pd_n_ : 1);                                                                        \
        memcpy((out)->ptr, pd_text_, pd_n_);                                                                           \
        (out)->len = pd_n_;                                                                                            \
    } while (0)

// Fills `err` with `tag` and `message`; returns false (for `return pd_fail(...)`).
static inline bool pd_fail(paddock_rl_types_plugin_error_t *err, uint8_t tag, const char *message) {
    err->tag = tag;
    PD_SET_STRING(&err->val.invalid_params, message); // every case holds one string
    return false;
}

// Whether parameter `i`'s key is `name`.
static inline bool pd_key_is(const paddock_rl_types_params_t *params, size_t i, const char *name) {
    return params->ptr[i].f0.len == strlen(name) && memcmp(params->ptr[i].f0.ptr, name, params->ptr[i].f0.len) == 0;
}

// The value of parameter `name`, or NULL.
static inline paddock_rl_types_value_t *pd_param(paddock_rl_types_params_t *params, const char *name) {
    for (size_t i = 0; i < params->len; i++)
        if (pd_key_is(params, i, name)) return &params->ptr[i].f1;
    return NULL;
}

// Refuses a key not in `known`, naming it and the keys `who` knows.
static inline bool pd_check_known(paddock_rl_types_params_t *params, const char *const *known, size_t nknown, const char *who,
                                  paddock_rl_types_plugin_error_t *err) {
    for (size_t i = 0; i < params->len; i++) {
        bool ok = false;
        for (size_t j = 0; j < nknown; j++) ok |= pd_key_is(params, i, known[j]);
        if (!ok) {
            char message[256];
            int n = snprintf(message, sizeof message, "unknown parameter `%.*s` (%s knows", (int)params->ptr[i].f0.len,
                             (const char *)params->ptr[i].f0.ptr, who);
            for (size_t j = 0; j < nknown && n < (int)sizeof message; j++)
                n += snprintf(message + n, sizeof message - (size_t)n, "%s %s", j ? "," : "", known[j]);
            if (n < (int)sizeof message) snprintf(message + n, sizeof message - (size_t)n, ")");
            return pd_fail(err, PD_INVALID_PARAMS, message);
        }
    }
    return true;
}

// Parameter `name` as a number (a real or an int), or `fallback` when absent.
static inline bool pd_param_real(paddock_rl_types_params_t *params, const char *name, double fallback, double *out,
                                 paddock_rl_types_plugin_error_t *err) {
    paddock_rl_types_value_t *v = pd_param(params, name);
    if (v == NULL) {
        *out = fallback;
        return true;
    }
    if (v->tag == PADDOCK_RL_TYPES_VALUE_REAL) *out = v->val.real;
    else if (v->tag == PADDOCK_RL_TYPES_VALUE_INT) *out = (double)v->val.int_;
    else {
        char message[160];
        snprintf(message, sizeof message, "parameter `%s` must be a number", name);
        return pd_fail(err, PD_INVALID_PARAMS, message);
    }
    return true;
}

// Parameter `name` as a boolean, or `fallback` when absent.
static inline bool pd_param_flag(paddock_rl_types_params_t *params, const char *name, bool fallback, bool *out,
                                 paddock_rl_types_plugin_error_t *err) {
    paddock_rl_types_value_t *v = pd_param(params, name);
    if (v == NULL) {
        *out = fallback;
        return true;
    }
    if (v->tag != PADDOCK_RL_TYPES_VALUE_BOOL) {
        char message[160];
        snprintf(message, sizeof message, "parameter `%s` must be true or false", name);
        return pd_fail(err, PD_INVALID_PARAMS, message);
    }
    *out = v->val.bool_;
    return true;
}

#endif
