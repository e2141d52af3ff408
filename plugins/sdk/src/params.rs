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
