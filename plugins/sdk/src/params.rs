//! Typed, checked access to the parameters a run config hands a plugin.

use crate::types::{PluginError, Value};

/// A read-only view of `(name, value)` parameters with typed getters whose errors name the
/// parameter and say what was expected.
#[derive(Clone, Copy, Debug)]
pub struct Params<'a> {
    list: &'a [(String, Value)],
}

impl<'a> Params<'a> {
    /// Wraps a parameter list.
    pub fn new(list: &'a [(String, Value)]) -> Self {
        Params { list }
    }

    /// An empty parameter list.
    pub fn empty() -> Params<'static> {
        Params { list: &[] }
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.list.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Whether the parameter `name` is given.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Refuses any parameter whose name is not in `known`.
    pub fn check_known(&self, known: &[&str]) -> Result<(), PluginError> {
        for (name, _) in self.list {
            if !known.contains(&name.as_str()) {
                return Err(PluginError::InvalidParams(format!(
                    "unknown parameter `{name}`; known parameters: {}",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                )));
            }
        }
        Ok(())
    }

    /// A real parameter (an integer is accepted), or `default` when absent.
    pub fn real(&self, name: &str, default: f64) -> Result<f64, PluginError> {
        match self.get(name) {
            None => Ok(default),
            Some(Value::Real(x)) => Ok(*x),
            Some(Value::Int(i)) => Ok(*i as f64),
            Some(other) => Err(wrong_type(name, "a number", other)),
        }
    }

    /// A real parameter that must be finite and pass `ok` — described by `what` in the error,
    /// e.g. `"≥ 0"` — or `default` when absent.
    pub fn real_if(&self, name: &str, default: f64, what: &str, ok: impl Fn(f64) -> bool) -> Result<f64, PluginError> {
        let v = self.real(name, default)?;
        if v.is_finite() && ok(v) { Ok(v) } else { Err(PluginError::InvalidParams(format!("`{name}` must be {what}, got {v}"))) }
    }

    /// A real parameter from 0 to 1 (a discount, a λ, a τ, a probability), or `default`.
    pub fn fraction(&self, name: &str, default: f64) -> Result<f64, PluginError> {
        self.real_if(name, default, "from 0 to 1", |v| (0.0..=1.0).contains(&v))
    }

    /// A real parameter above 0 (a learning rate, a clip range), or `default`.
    pub fn positive(&self, name: &str, default: f64) -> Result<f64, PluginError> {
        self.real_if(name, default, "above 0", |v| v > 0.0)
    }

    /// A real parameter of at least 0 (a loss coefficient, a noise scale), or `default`.
    pub fn non_negative(&self, name: &str, default: f64) -> Result<f64, PluginError> {
        self.real_if(name, default, "0 or more", |v| v >= 0.0)
    }

    /// An integer parameter within `range`, or `default` when absent.
    pub fn int_in(&self, name: &str, default: i64, range: std::ops::RangeInclusive<i64>) -> Result<i64, PluginError> {
        let v = self.int(name, default)?;
        if range.contains(&v) {
            Ok(v)
        } else {
            Err(PluginError::InvalidParams(format!("`{name}` must be {} to {}, got {v}", range.start(), range.end())))
        }
    }

    /// An integer parameter, or `default` when absent.
    pub fn int(&self, name: &str, default: i64) -> Result<i64, PluginError> {
        match self.get(name) {
            None => Ok(default),
            Some(Value::Int(i)) => Ok(*i),
            Some(other) => Err(wrong_type(name, "an integer", other)),
        }
    }

    /// A boolean parameter, or `default` when absent.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, PluginError> {
        match self.get(name) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(wrong_type(name, "a boolean", other)),
        }
    }

    /// A string parameter, if present.
    pub fn text(&self, name: &str) -> Result<Option<&'a str>, PluginError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Text(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(wrong_type(name, "a string", other)),
        }
    }

    /// A list of reals of any length, if present.
    pub fn get_reals(&self, name: &str) -> Result<Option<&'a [f64]>, PluginError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Reals(v)) => Ok(Some(v.as_slice())),
            Some(other) => Err(wrong_type(name, "a list of numbers", other)),
        }
    }

    /// Layer widths (e.g. `hidden = [64, 64]`): whole numbers from 1 to 65536; `default`
    /// when absent.
    pub fn widths(&self, name: &str, default: &[u32]) -> Result<Vec<u32>, PluginError> {
        let Some(v) = self.get_reals(name)? else { return Ok(default.to_vec()) };
        v.iter()
            .map(|&x| {
                if x.fract() == 0.0 && (1.0..=65536.0).contains(&x) {
                    Ok(x as u32)
                } else {
                    Err(PluginError::InvalidParams(format!("parameter `{name}` must list whole widths from 1 to 65536, got {x}")))
                }
            })
            .collect()
    }

    /// A list of reals of exactly `len` elements, if present.
    pub fn reals(&self, name: &str, len: usize) -> Result<Option<&'a [f64]>, PluginError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Reals(v)) if v.len() == len => Ok(Some(v.as_slice())),
            Some(Value::Reals(v)) => Err(PluginError::InvalidParams(format!("parameter `{name}` needs {len} numbers, got {}", v.len()))),
            Some(other) => Err(wrong_type(name, "a list of numbers", other)),
        }
    }
}

fn wrong_type(name: &str, expected: &str, found: &Value) -> PluginError {
    let found = match found {
        Value::Bool(_) => "a boolean",
        Value::Int(_) => "an integer",
        Value::Real(_) => "a number",
        Value::Text(_) => "a string",
        Value::Reals(_) => "a list of numbers",
    };
    PluginError::InvalidParams(format!("parameter `{name}` must be {expected}, got {found}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: std::fmt::Debug>(r: Result<T, PluginError>) -> String {
        match r {
            Err(PluginError::InvalidParams(m)) => m,
            other => panic!("expected invalid-params, got {other:?}"),
        }
    }

    #[test]
    fn range_checked_parameters_name_the_parameter_and_the_range() {
        let list =
            [("substeps".to_string(), Value::Int(0)), ("gear".to_string(), Value::Real(-1.0)), ("nan".to_string(), Value::Real(f64::NAN))];
        let p = Params::new(&list);
        assert_eq!(err(p.int_in("substeps", 4, 1..=100)), "`substeps` must be 1 to 100, got 0");
        assert_eq!(err(p.real_if("gear", 200.0, "≥ 0", |v| v >= 0.0)), "`gear` must be ≥ 0, got -1");
        assert!(err(p.real_if("nan", 1.0, "any number", |_| true)).contains("`nan` must be any number, got NaN"));
        assert_eq!(p.int_in("absent", 4, 1..=100).ok(), Some(4));
        assert_eq!(p.real_if("absent", 0.5, "> 0", |v| v > 0.0).ok(), Some(0.5));
        assert!(err(p.int_in("gear", 4, 1..=100)).contains("must be an integer"));
    }
}
