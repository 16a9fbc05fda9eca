//! Tiny hand-rolled `--flag value` parser (no clap).
//!
//! Each subcommand declares which flags take a value and which are booleans;
//! anything else is an error. `--flag=value` is accepted too.

use crate::fail;

pub struct Args {
  /// (flag, value) pairs in command-line order; booleans have `None`.
  pairs: Vec<(String, Option<String>)>,
}

impl Args {
  /// Parse `argv` (without the subcommand) against the allowed flag names.
  pub fn parse(argv: &[String], value_flags: &[&str], bool_flags: &[&str]) -> Args {
    let mut pairs: Vec<(String, Option<String>)> = Vec::new();
    let mut i = 0;
    // Bounded: `i` grows by at least one per iteration.
    while i < argv.len() {
      let arg = &argv[i];
      i += 1;
      let (name, inline) = match arg.split_once('=') {
        Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
        _ => (arg.clone(), None),
      };
      if pairs.iter().any(|(n, _)| *n == name) {
        fail(format!("{name} given more than once"));
      }
      if value_flags.contains(&name.as_str()) {
        let value = match inline {
          Some(v) => v,
          None => {
            let Some(v) = argv.get(i) else {
              fail(format!("{name} needs a value"));
            };
            i += 1;
            v.clone()
          }
        };
        pairs.push((name, Some(value)));
      } else if bool_flags.contains(&name.as_str()) {
        if inline.is_some() {
          fail(format!("{name} takes no value"));
        }
        pairs.push((name, None));
      } else {
        fail(format!("unknown argument {arg:?}"));
      }
    }
    Args { pairs }
  }

  fn raw(&self, name: &str) -> Option<&str> {
    self.pairs.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
  }

  /// True if the boolean flag was given.
  pub fn flag(&self, name: &str) -> bool {
    self.pairs.iter().any(|(n, _)| n == name)
  }

  /// An optional string value.
  pub fn str(&self, name: &str) -> Option<&str> {
    self.raw(name)
  }

  /// An optional unsigned integer within `min..=max`.
  pub fn u64_in(&self, name: &str, min: u64, max: u64) -> Option<u64> {
    let text = self.raw(name)?;
    let value: u64 =
      text.trim().parse().unwrap_or_else(|_| fail(format!("{name}: not an unsigned integer: {text:?}")));
    if value < min || value > max {
      fail(format!("{name}: {value} is outside {min}..={max}"));
    }
    Some(value)
  }

  /// A required unsigned integer within `min..=max`.
  pub fn req_u64(&self, name: &str, min: u64, max: u64) -> u64 {
    self.u64_in(name, min, max).unwrap_or_else(|| fail(format!("{name} is required")))
  }

  /// An optional positive finite number (seconds, rates) up to `max`.
  pub fn f64_pos(&self, name: &str, max: f64) -> Option<f64> {
    let text = self.raw(name)?;
    let value: f64 = text.trim().parse().unwrap_or_else(|_| fail(format!("{name}: not a number: {text:?}")));
    if !value.is_finite() || value <= 0.0 || value > max {
      fail(format!("{name}: {value} must be > 0 and <= {max}"));
    }
    Some(value)
  }
}
