//! `[[curriculum]]`: stages that change the env's parameters while a run goes on. Each
//! stage has one trigger (a step, or an evaluation's success rate or mean return) and the
//! parameters it sets; stages begin in order, one at a time, and each env takes the new
//! parameters at its next episode boundary.
//!
//! ```toml
//! [[curriculum]]
//! at_step = 200_000
//! params = { target-range = 0.3 }
//!
//! [[curriculum]]
//! when_eval_success = 0.8     # an evaluation after the previous stage began reached 80%
//! params = { target-range = 0.5, max-ee-step = 0.03 }
//! ```

use super::*;

/// One `[[curriculum]]` stage.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CurriculumStage {
    /// Begin at the first update at or after this env step.
    #[serde(deserialize_with = "whole_opt", default, skip_serializing_if = "Option::is_none")]
    pub at_step: Option<u64>,
    /// Begin after an evaluation whose success rate (envs reporting `is-success`) is at
    /// least this fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_eval_success: Option<f64>,
    /// Begin after an evaluation whose mean return is at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_eval_return: Option<f64>,
    /// The env parameters this stage sets, over the config's `[env.params]` and the
    /// stages before it.
    pub params: toml::Table,
}

/// What begins a stage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Trigger {
    /// At the first update at or after this step.
    Step(u64),
    /// After an evaluation with at least this success rate.
    EvalSuccess(f64),
    /// After an evaluation with at least this mean return.
    EvalReturn(f64),
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trigger::Step(s) => write!(f, "at step {s}"),
            Trigger::EvalSuccess(x) => write!(f, "after an evaluation with success rate ≥ {x}"),
            Trigger::EvalReturn(x) => write!(f, "after an evaluation with mean return ≥ {x}"),
        }
    }
}

impl CurriculumStage {
    /// The stage's trigger (checked by [`check_curriculum`] to be exactly one).
    pub fn trigger(&self) -> Trigger {
        match (self.at_step, self.when_eval_success, self.when_eval_return) {
            (Some(s), _, _) => Trigger::Step(s),
            (None, Some(x), _) => Trigger::EvalSuccess(x),
            (None, None, Some(x)) => Trigger::EvalReturn(x),
            (None, None, None) => Trigger::Step(u64::MAX),
        }
    }
}

/// `stage`'s key in messages: `curriculum[i]` (0-based, as TOML tools count).
pub fn stage_key(i: usize) -> String {
    format!("curriculum[{i}]")
}

/// `base` with `changes` set over it (a new key is added; a key's value is replaced).
pub fn merged(base: &toml::Table, changes: &toml::Table) -> toml::Table {
    let mut out = base.clone();
    out.extend(changes.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// Checks the stages serde cannot: one trigger each, fractions in range, some parameters,
/// each a plugin parameter; eval triggers need evaluations. (Whether the env plugin takes
/// them is checked when a run sets up, before any step.)
pub(super) fn check_curriculum(config: &RunConfig) -> Result<(), ConfigError> {
    for (i, s) in config.curriculum.iter().enumerate() {
        let key = stage_key(i);
        let triggers = [s.at_step.is_some(), s.when_eval_success.is_some(), s.when_eval_return.is_some()];
        if triggers.iter().filter(|&&t| t).count() != 1 {
            return Err(value(format!(
                "key `{key}`: a stage has exactly one of `at_step`, `when_eval_success` and `when_eval_return` (what begins it)"
            )));
        }
        if let Some(x) = s.when_eval_success
            && !(0.0..=1.0).contains(&x)
        {
            return Err(value(format!("key `{key}.when_eval_success` must be a fraction between 0 and 1, not {x}")));
        }
        if s.when_eval_return.is_some_and(|x| !x.is_finite()) {
            return Err(value(format!("key `{key}.when_eval_return` must be a finite number")));
        }
        if s.params.is_empty() {
            return Err(value(format!("key `{key}.params` is empty: a stage sets at least one env parameter")));
        }
        if (s.when_eval_success.is_some() || s.when_eval_return.is_some()) && config.train.eval_every == 0 {
            return Err(value(format!(
                "key `{key}` waits for an evaluation, and `train.eval_every = 0` evaluates only at the end: set `train.eval_every`"
            )));
        }
        to_params(&format!("{key}.params"), &s.params)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(stages: &str) -> Result<RunConfig, String> {
        let c = RunConfig::parse(&format!("[env]\nplugin = \"x.wasm\"\n[env.params]\nrange = 0.1\n{stages}")).map_err(|e| e.to_string())?;
        c.check().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn stages_parse_in_order_with_their_triggers() {
        let c = parse(
            "[[curriculum]]\nat_step = 2e5\nparams = { range = 0.3 }\n[[curriculum]]\nwhen_eval_success = 0.8\n[curriculum.params]\nrange = 0.5\nfast = true\n",
        )
        .expect("valid");
        assert_eq!(c.curriculum.len(), 2);
        assert_eq!(c.curriculum[0].trigger(), Trigger::Step(200_000));
        assert_eq!(c.curriculum[1].trigger(), Trigger::EvalSuccess(0.8));
        let all = c.curriculum.iter().fold(c.env.params.clone(), |p, s| merged(&p, &s.params));
        assert_eq!(all.get("range").and_then(toml::Value::as_float), Some(0.5));
        assert_eq!(all.get("fast").and_then(toml::Value::as_bool), Some(true));
        // The recorded config (`config.toml` of a run) keeps the stages.
        let text = toml::to_string(&c).expect("serialize");
        let back = RunConfig::parse(&text).expect("reparse");
        assert_eq!(back.curriculum, c.curriculum);
    }

    #[test]
    fn bad_stages_are_named() {
        let err = |s: &str| parse(s).expect_err(s);
        assert!(err("[[curriculum]]\nparams = { range = 0.3 }\n").contains("`curriculum[0]`: a stage has exactly one"));
        assert!(err("[[curriculum]]\nat_step = 5\nwhen_eval_return = 1.0\nparams = { range = 0.3 }\n").contains("exactly one"));
        assert!(
            err("[[curriculum]]\nat_step = 5\nparams = { a = 1 }\n[[curriculum]]\nwhen_eval_success = 80\nparams = { a = 2 }\n")
                .contains("`curriculum[1].when_eval_success` must be a fraction")
        );
        assert!(err("[[curriculum]]\nat_step = 5\nparams = {}\n").contains("`curriculum[0].params` is empty"));
        assert!(err("[[curriculum]]\nat_step = 5\nparams = { a = { b = 1 } }\n").contains("curriculum[0].params.a"));
        assert!(err("[[curriculum]]\nat_step = -5\nparams = { a = 1 }\n").contains("at_step"));
        assert!(err("[[curriculum]]\nat_stpe = 5\nparams = { a = 1 }\n").contains("at_stpe"));
        assert!(
            err("[train]\neval_every = 0\n[[curriculum]]\nwhen_eval_return = 5\nparams = { a = 1 }\n").contains("`train.eval_every = 0`")
        );
    }
}
