//! The run config (`POST /run/start`, `cargo xtask deploy --config run.json`) and its tasks.
//!
//! ```json
//! { "ruby_version": "3.4.7", "runs_per_instance_type": 3, "run_id": 1733945123,
//!   "aws": ["c8g.medium"], "azure": ["Standard_D2pls_v6"], "local": ["local-1cpu"],
//!   "ruby_bench": { "benchmarks": ["fib", "/^liquid/"], "categories": ["headline"],
//!                   "warmup": 5, "bench": 10, "modes": ["yjit"] },
//!   "debug_mode": false }
//! ```
//!
//! People write this file by hand, so parsing rejects unknown fields and reports the first
//! problem in the order of the example above: unknown fields, `ruby_version`,
//! `runs_per_instance_type`, `run_id`, `aws`, `azure`, `local`, repeated instance types, no
//! instance types at all, `ruby_bench`, `debug_mode`. `null` counts as absent everywhere.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::names::NamedEnum;
use crate::validation::{
    Fields, Result, ValidationError, as_object, describe, parse_object, quoted, string_items,
};

/// The error of [`RunConfig::from_json`]: the first problem, with a message naming the field.
pub type ConfigError = ValidationError;

/// A cloud (or the local Docker engine) that task runners run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Amazon Web Services.
    Aws,
    /// Microsoft Azure.
    Azure,
    /// Runner containers on the local Docker engine, for development and tests.
    Local,
}

named_enum!(Provider, "provider", "aws, azure or local", {
    Aws => "aws",
    Azure => "azure",
    Local => "local",
});

/// How ruby-bench runs Ruby: `yjit` is `ruby --yjit`, `interp` is plain `ruby`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `ruby --yjit`.
    Yjit,
    /// Plain `ruby`, the interpreter.
    Interp,
}

named_enum!(Mode, "mode", "yjit or interp", {
    Yjit => "yjit",
    Interp => "interp",
});

/// A ruby-bench benchmark category, from its `benchmarks.yml`.
///
/// Deserialization is lenient because `meta.json` is read by the site: `null` and names this
/// crate does not know become [`Category::Other`], as ruby-bench treats a benchmark without a
/// category. The run config checks its categories strictly instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// The benchmarks ruby-bench reports by default, modelled on real applications.
    Headline,
    /// Every benchmark that is neither headline nor micro.
    #[default]
    Other,
    /// Small benchmarks of one feature.
    Micro,
}

named_enum!(Category, "category", "headline, other or micro", {
    Headline => "headline",
    Other => "other",
    Micro => "micro",
});

impl<'de> Deserialize<'de> for Category {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = Option::<String>::deserialize(deserializer)?;
        Ok(name.and_then(|n| n.parse().ok()).unwrap_or_default())
    }
}

/// Which benchmarks ruby-bench runs for each task, and how.
///
/// Always fully resolved: parsing fills in the defaults, so the value stored with a run and
/// returned inside every claimed task says exactly what runs. An absent `ruby_bench` means the
/// headline benchmarks, YJIT only, ruby-bench's own iteration counts ([`Default`]). When
/// neither `benchmarks` nor `categories` is given, `categories` becomes `["headline"]`; when
/// `benchmarks` is given without `categories`, no category filter applies. When both are
/// given, a benchmark runs only if it passes both filters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct RubyBenchSelection {
    /// Benchmark names, name prefixes and `/regex/` filters, as ruby-bench accepts them.
    pub benchmarks: Vec<String>,
    /// Categories to run; empty means no category filter.
    pub categories: Vec<Category>,
    /// Warmup iterations; `None` leaves ruby-bench's default.
    pub warmup: Option<u32>,
    /// Benchmark (measured) iterations; `None` leaves ruby-bench's default.
    pub bench: Option<u32>,
    /// The modes to run each benchmark in, never empty and without repeats.
    pub modes: Vec<Mode>,
}

impl Default for RubyBenchSelection {
    fn default() -> Self {
        Self {
            benchmarks: Vec::new(),
            categories: vec![Category::Headline],
            warmup: None,
            bench: None,
            modes: vec![Mode::Yjit],
        }
    }
}

/// The fields of `ruby_bench`, in the order they are checked.
const RUBY_BENCH_FIELDS: &[&str] = &["benchmarks", "categories", "warmup", "bench", "modes"];

impl RubyBenchSelection {
    /// Parses and validates a `ruby_bench` object on its own (its paths start `ruby_bench.`).
    pub fn from_value(value: &Value) -> Result<Self, ValidationError> {
        match value {
            Value::Null => Ok(Self::default()),
            Value::Object(map) => Self::from_map(map),
            other => Err(ValidationError::field(
                "ruby_bench",
                format!("\"ruby_bench\" must be an object, got {}", describe(other)),
            )),
        }
    }

    fn from_map(map: &Map<String, Value>) -> Result<Self> {
        let fields = Fields::nested(map, "ruby_bench.");
        fields.reject_unknown(RUBY_BENCH_FIELDS, |_| {
            format!("known fields are {}", RUBY_BENCH_FIELDS.join(", "))
        })?;

        let mut benchmarks = Vec::new();
        if let Some(items) = fields.optional_array("benchmarks", "benchmark names")? {
            for (path, name) in string_items(&fields.path("benchmarks"), items)? {
                check_benchmark_filter(&path, name)?;
                benchmarks.push(name.to_owned());
            }
        }

        let categories: Vec<Category> = match fields.optional_array("categories", "categories")? {
            Some(items) => names_without_repeats(&fields.path("categories"), items)?,
            None => Vec::new(),
        };
        let categories = if categories.is_empty() && benchmarks.is_empty() {
            vec![Category::Headline]
        } else {
            categories
        };

        let warmup = fields.optional_integer("warmup", 0, u32::MAX.into(), "an integer >= 0")?;
        let bench = fields.optional_integer("bench", 1, u32::MAX.into(), "an integer >= 1")?;

        let modes = match fields.optional_array("modes", "modes")? {
            None => vec![Mode::Yjit],
            Some([]) => {
                return Err(fields.error(
                    "modes",
                    format!("is empty: give at least one of {}", Mode::EXPECTED),
                ));
            }
            Some(items) => names_without_repeats(&fields.path("modes"), items)?,
        };

        Ok(Self {
            benchmarks,
            categories,
            warmup: warmup.map(to_u32),
            bench: bench.map(to_u32),
            modes,
        })
    }
}

impl TryFrom<Value> for RubyBenchSelection {
    type Error = ValidationError;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Self::from_value(&value)
    }
}

/// Checks one entry of `ruby_bench.benchmarks`: a `/regex/` with a non-empty body, or a name
/// (or prefix) that is not empty, has no whitespace and does not look like an option.
fn check_benchmark_filter(path: &str, name: &str) -> Result<()> {
    let problem = if let Some(rest) = name.strip_prefix('/') {
        match rest.strip_suffix('/') {
            None => Some("is not a valid regex filter: write it as /pattern/"),
            Some("") => Some("is a regex filter with an empty pattern"),
            Some(_) => None,
        }
    } else if name.is_empty() {
        Some("is an empty benchmark name")
    } else if name.chars().any(char::is_whitespace) {
        Some("must not contain whitespace")
    } else if name.starts_with('-') {
        Some("must not start with '-'")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(ValidationError::field(
            path,
            format!("{} {} {problem}", quoted(path), quoted(name)),
        )),
    }
}

/// Parses an array of enum names (categories, modes), rejecting unknown names and repeats.
fn names_without_repeats<T: NamedEnum>(path: &str, items: &[Value]) -> Result<Vec<T>> {
    let mut out: Vec<T> = Vec::new();
    for (item_path, name) in string_items(path, items)? {
        let parsed: T = name.parse().map_err(|_| {
            ValidationError::field(
                &item_path,
                format!(
                    "{} {} is not one of {}",
                    quoted(&item_path),
                    quoted(name),
                    T::EXPECTED
                ),
            )
        })?;
        if out.contains(&parsed) {
            return Err(ValidationError::field(
                &item_path,
                format!("{} lists {} twice", quoted(path), quoted(name)),
            ));
        }
        out.push(parsed);
    }
    Ok(out)
}

/// Narrows an integer that validation already bounded to `u32`.
fn to_u32(n: i64) -> u32 {
    u32::try_from(n).expect("validated to fit in u32")
}

/// What one `POST /run/start` asks for: which instance types to benchmark, how often, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct RunConfig {
    /// The Ruby version to benchmark; also the tag of the benchmark image.
    pub ruby_version: String,
    /// How many tasks (ruby-bench runs) each instance type gets.
    pub runs_per_instance_type: u32,
    /// The run id the master script chose (Unix seconds); `None` lets the orchestrator choose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// AWS instance types, as named by the AWS API.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aws: Vec<String>,
    /// Azure VM sizes, as named by the Azure API.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub azure: Vec<String>,
    /// Free labels for runner containers on the local Docker engine.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub local: Vec<String>,
    /// Which benchmarks run and how, with defaults filled in.
    pub ruby_bench: RubyBenchSelection,
    /// When true, a runner whose task fails keeps its host up for debugging.
    pub debug_mode: bool,
}

/// The top-level fields of a run config, in the order they are checked.
const RUN_CONFIG_FIELDS: &[&str] = &[
    "ruby_version",
    "runs_per_instance_type",
    "run_id",
    "aws",
    "azure",
    "local",
    "ruby_bench",
    "debug_mode",
];

impl RunConfig {
    /// Parses and validates a run config from JSON text, reporting the first problem.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let map = parse_object(bytes, "run config")?;
        Self::from_map(&map)
    }

    /// Validates a run config that is already parsed as JSON, reporting the first problem.
    pub fn from_value(value: &Value) -> Result<Self, ConfigError> {
        Self::from_map(as_object(value, "run config")?)
    }

    fn from_map(map: &Map<String, Value>) -> Result<Self> {
        let fields = Fields::new(map);
        fields.reject_unknown(RUN_CONFIG_FIELDS, |value| {
            if value.is_array() {
                "providers are aws, azure, local".to_owned()
            } else {
                format!("known fields are {}", RUN_CONFIG_FIELDS.join(", "))
            }
        })?;

        let ruby_version = fields.required_text(
            "ruby_version",
            "give the Ruby version to benchmark, e.g. \"3.4.7\"",
        )?;
        if !is_safe_name(&ruby_version) {
            return Err(fields.error(
                "ruby_version",
                format!(
                    "must be an image tag such as \"3.4.7\" (letters, digits, '.', '-', '_'), got {}",
                    quoted(&ruby_version)
                ),
            ));
        }

        let runs = fields.required(
            "runs_per_instance_type",
            "give how many times to run each instance type, e.g. 3",
        )?;
        let runs_per_instance_type = to_u32(fields.integer(
            "runs_per_instance_type",
            runs,
            1,
            u32::MAX.into(),
            "a positive integer",
        )?);

        let run_id =
            fields.optional_integer("run_id", 1, i64::MAX, "a positive integer (Unix seconds)")?;

        let aws = instance_type_list(&fields, Provider::Aws)?;
        let azure = instance_type_list(&fields, Provider::Azure)?;
        let local = instance_type_list(&fields, Provider::Local)?;
        let lists = [
            (Provider::Aws, &aws),
            (Provider::Azure, &azure),
            (Provider::Local, &local),
        ];
        check_repeats(&lists)?;
        if lists.iter().all(|(_, types)| types.is_empty()) {
            return Err(ValidationError::document(
                "no instance types: give at least one of \"aws\", \"azure\", \"local\" a non-empty array",
            ));
        }

        let ruby_bench = match fields.get("ruby_bench") {
            None => RubyBenchSelection::default(),
            Some(value) => RubyBenchSelection::from_value(value)?,
        };
        let debug_mode = fields.optional_bool("debug_mode")?.unwrap_or(false);

        Ok(Self {
            ruby_version,
            runs_per_instance_type,
            run_id,
            aws,
            azure,
            local,
            ruby_bench,
            debug_mode,
        })
    }

    /// The instance types configured for `provider`, in config order.
    pub fn instance_types_of(&self, provider: Provider) -> &[String] {
        match provider {
            Provider::Aws => &self.aws,
            Provider::Azure => &self.azure,
            Provider::Local => &self.local,
        }
    }

    /// Every configured instance type with its provider: aws, azure, local, each in config order.
    pub fn instance_types(&self) -> impl Iterator<Item = (Provider, &str)> + '_ {
        Provider::ALL.iter().flat_map(move |&provider| {
            self.instance_types_of(provider)
                .iter()
                .map(move |instance_type| (provider, instance_type.as_str()))
        })
    }

    /// How many tasks [`RunConfig::tasks`] returns.
    pub fn task_count(&self) -> usize {
        self.instance_types().count() * self.runs_per_instance_type as usize
    }

    /// The tasks this config creates: for each instance type (in [`RunConfig::instance_types`]
    /// order), runs 1 to `runs_per_instance_type`.
    pub fn tasks(&self) -> Vec<TaskSpec> {
        self.instance_types()
            .flat_map(|(provider, instance_type)| {
                (1..=self.runs_per_instance_type).map(move |run| TaskSpec {
                    provider,
                    instance_type: instance_type.to_owned(),
                    run,
                })
            })
            .collect()
    }
}

impl TryFrom<Value> for RunConfig {
    type Error = ConfigError;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Self::from_value(&value)
    }
}

/// Reads one provider's array of instance type names.
fn instance_type_list(fields: &Fields<'_>, provider: Provider) -> Result<Vec<String>> {
    let key = provider.as_str();
    let Some(items) = fields.optional_array(key, "instance type names")? else {
        return Ok(Vec::new());
    };
    let mut types = Vec::with_capacity(items.len());
    for (path, name) in string_items(key, items)? {
        if name.is_empty() {
            return Err(ValidationError::field(
                &path,
                format!("{} is empty", quoted(&path)),
            ));
        }
        if !is_safe_name(name) {
            return Err(ValidationError::field(
                &path,
                format!(
                    "{} must be an instance type name such as \"c8g.medium\" (letters, digits, '.', '-', '_'), got {}",
                    quoted(&path),
                    quoted(name)
                ),
            ));
        }
        types.push(name.to_owned());
    }
    Ok(types)
}

/// Rejects an instance type that appears twice, within one provider or across providers:
/// its results folder `<instance_type>-<run>` would collide.
fn check_repeats(lists: &[(Provider, &Vec<String>)]) -> Result<()> {
    let mut seen: HashMap<&str, Provider> = HashMap::new();
    for (provider, types) in lists {
        for (i, instance_type) in types.iter().enumerate() {
            if let Some(first) = seen.insert(instance_type, *provider) {
                let where_ = if first == *provider {
                    format!("in {provider}")
                } else {
                    format!("({first} and {provider})")
                };
                return Err(ValidationError::field(
                    format!("{provider}[{i}]"),
                    format!(
                        "instance type {} appears twice {where_}",
                        quoted(instance_type)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// True for names that are safe as an image tag, a folder name and a label: ASCII letters,
/// digits, `.`, `-` and `_`, not starting with `.` or `-`, at most 128 characters.
fn is_safe_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    name.len() <= 128
        && name.chars().all(allowed)
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One task of a run: one ruby-bench run on one instance type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Where the task runs.
    pub provider: Provider,
    /// The instance type (or local label) that must run it.
    pub instance_type: String,
    /// Which run of this instance type it is, from 1.
    pub run: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The instance type config of seed.md, without its comment line.
    const SEED_EXAMPLE: &str = r#"{
      "ruby_version": "3.4.7",
      "runs_per_instance_type": 3,
      "aws": [
        "c8g.medium",
        "c7g.medium",
        "c6g.medium",
        "c8a.medium",
        "c7a.medium",
        "c8i.large",
        "c7i.large"
      ],
      "azure": [
        "Standard_D2pls_v6",
        "Standard_D2als_v6",
        "Standard_D2ls_v6",
        "Standard_F2als_v6"
      ]
    }"#;

    /// The run config of docs/decisions.md.
    const DECISIONS_EXAMPLE: &str = r#"
    { "ruby_version": "3.4.7", "runs_per_instance_type": 3, "run_id": 1733945123,
      "aws": ["c8g.medium"], "azure": ["Standard_D2pls_v6"], "local": ["local-1cpu"],
      "ruby_bench": { "benchmarks": ["fib", "/^liquid/"], "categories": ["headline"],
                      "warmup": 5, "bench": 10, "modes": ["yjit"] },
      "debug_mode": false }"#;

    fn error_of(value: Value) -> String {
        let err = RunConfig::from_json(value.to_string().as_bytes()).unwrap_err();
        err.to_string()
    }

    /// A valid config with `key` set to `value` (`null` removes nothing: it counts as absent).
    fn with(key: &str, value: Value) -> Value {
        let mut config = json!({
            "ruby_version": "3.4.7",
            "runs_per_instance_type": 3,
            "aws": ["c8g.medium"],
        });
        config[key] = value;
        config
    }

    fn with_ruby_bench(value: Value) -> Value {
        with("ruby_bench", value)
    }

    #[test]
    fn seed_example_expands_to_33_tasks_in_order() {
        let config = RunConfig::from_json(SEED_EXAMPLE.as_bytes()).unwrap();
        let tasks = config.tasks();
        assert_eq!(tasks.len(), 33);
        assert_eq!(config.task_count(), 33);

        let expected_types = [
            (Provider::Aws, "c8g.medium"),
            (Provider::Aws, "c7g.medium"),
            (Provider::Aws, "c6g.medium"),
            (Provider::Aws, "c8a.medium"),
            (Provider::Aws, "c7a.medium"),
            (Provider::Aws, "c8i.large"),
            (Provider::Aws, "c7i.large"),
            (Provider::Azure, "Standard_D2pls_v6"),
            (Provider::Azure, "Standard_D2als_v6"),
            (Provider::Azure, "Standard_D2ls_v6"),
            (Provider::Azure, "Standard_F2als_v6"),
        ];
        let expected: Vec<TaskSpec> = expected_types
            .iter()
            .flat_map(|&(provider, instance_type)| {
                (1..=3).map(move |run| TaskSpec {
                    provider,
                    instance_type: instance_type.to_owned(),
                    run,
                })
            })
            .collect();
        assert_eq!(tasks, expected);
        assert_eq!(
            serde_json::to_value(&tasks[..2]).unwrap(),
            json!([
                {"provider": "aws", "instance_type": "c8g.medium", "run": 1},
                {"provider": "aws", "instance_type": "c8g.medium", "run": 2},
            ])
        );
        assert_eq!(
            serde_json::to_value(&tasks[32]).unwrap(),
            json!({"provider": "azure", "instance_type": "Standard_F2als_v6", "run": 3})
        );
    }

    #[test]
    fn seed_example_gets_defaults() {
        let config = RunConfig::from_json(SEED_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(config.run_id, None);
        assert!(config.local.is_empty());
        assert!(!config.debug_mode);
        assert_eq!(config.ruby_bench, RubyBenchSelection::default());
        assert_eq!(config.ruby_bench.categories, [Category::Headline]);
        assert_eq!(config.ruby_bench.modes, [Mode::Yjit]);
    }

    #[test]
    fn local_providers_come_last() {
        let config = RunConfig::from_value(&json!({
            "ruby_version": "3.4.7", "runs_per_instance_type": 1,
            "local": ["local-1cpu"], "azure": ["Standard_D2pls_v6"], "aws": ["c8g.medium"],
        }))
        .unwrap();
        let order: Vec<(Provider, &str)> = config.instance_types().collect();
        assert_eq!(
            order,
            [
                (Provider::Aws, "c8g.medium"),
                (Provider::Azure, "Standard_D2pls_v6"),
                (Provider::Local, "local-1cpu"),
            ]
        );
    }

    #[test]
    fn decisions_example_parses_and_round_trips() {
        let config = RunConfig::from_json(DECISIONS_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(
            config,
            RunConfig {
                ruby_version: "3.4.7".into(),
                runs_per_instance_type: 3,
                run_id: Some(1733945123),
                aws: vec!["c8g.medium".into()],
                azure: vec!["Standard_D2pls_v6".into()],
                local: vec!["local-1cpu".into()],
                ruby_bench: RubyBenchSelection {
                    benchmarks: vec!["fib".into(), "/^liquid/".into()],
                    categories: vec![Category::Headline],
                    warmup: Some(5),
                    bench: Some(10),
                    modes: vec![Mode::Yjit],
                },
                debug_mode: false,
            }
        );
        let original: Value = serde_json::from_str(DECISIONS_EXAMPLE).unwrap();
        assert_eq!(serde_json::to_value(&config).unwrap(), original);
        // Serde goes through the same validation as `from_json`.
        let again: RunConfig = serde_json::from_value(original).unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn integral_numbers_are_integers_and_null_is_not_given() {
        // JSON (and JSON Schema) make no difference between 3 and 3.0.
        let config = RunConfig::from_json(
            br#"{"ruby_version": "3.4.7", "runs_per_instance_type": 3.0, "local": ["l"],
                 "run_id": null, "aws": null, "ruby_bench": null, "debug_mode": null}"#,
        )
        .unwrap();
        assert_eq!(config.runs_per_instance_type, 3);
        assert_eq!((config.run_id, config.debug_mode), (None, false));
    }

    #[test]
    fn serde_reports_the_same_message() {
        let err = serde_json::from_str::<RunConfig>(r#"{"ruby_version": "3.4.7"}"#).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "missing field \"runs_per_instance_type\": give how many times to run each instance type, e.g. 3"
            ),
            "{err}"
        );
    }

    #[test]
    fn ruby_bench_defaults_are_resolved() {
        let parse = |v: Value| {
            RunConfig::from_value(&with_ruby_bench(v))
                .unwrap()
                .ruby_bench
        };
        assert_eq!(parse(Value::Null), RubyBenchSelection::default());
        assert_eq!(parse(json!({})), RubyBenchSelection::default());
        assert_eq!(
            parse(json!({"warmup": 0, "modes": ["interp", "yjit"]})),
            RubyBenchSelection {
                warmup: Some(0),
                modes: vec![Mode::Interp, Mode::Yjit],
                ..RubyBenchSelection::default()
            }
        );
        assert_eq!(
            parse(json!({"benchmarks": ["fib"]})),
            RubyBenchSelection {
                benchmarks: vec!["fib".into()],
                categories: vec![],
                ..RubyBenchSelection::default()
            }
        );
        assert_eq!(
            parse(json!({"categories": ["micro", "other"], "bench": 1})).categories,
            [Category::Micro, Category::Other]
        );
        // The resolved form reads back as itself.
        let resolved = parse(json!({"benchmarks": ["fib"]}));
        let value = serde_json::to_value(&resolved).unwrap();
        assert_eq!(RubyBenchSelection::from_value(&value).unwrap(), resolved);
    }

    #[test]
    fn optional_fields_accept_null_and_empty_provider_arrays() {
        let config = RunConfig::from_value(&json!({
            "ruby_version": "3.4.7", "runs_per_instance_type": 1, "run_id": null,
            "aws": [], "azure": null, "local": ["l"], "debug_mode": true,
        }))
        .unwrap();
        assert_eq!(config.run_id, None);
        assert_eq!(config.tasks().len(), 1);
        assert!(config.debug_mode);
        assert_eq!(
            serde_json::to_value(&config).unwrap(),
            json!({
                "ruby_version": "3.4.7", "runs_per_instance_type": 1, "local": ["l"],
                "ruby_bench": {"benchmarks": [], "categories": ["headline"], "warmup": null,
                               "bench": null, "modes": ["yjit"]},
                "debug_mode": true,
            })
        );
    }

    #[test]
    fn every_validation_message() {
        let cases: Vec<(Value, &str)> = vec![
            // The document.
            (json!([1]), "run config must be a JSON object, got an array"),
            (json!("x"), "run config must be a JSON object, got \"x\""),
            // Unknown fields come first, so a typo is not reported as a missing field.
            (
                with("gcp", json!(["n2-standard-2"])),
                "unknown field \"gcp\": providers are aws, azure, local",
            ),
            (
                with("ruby_verison", json!("3.4.7")),
                "unknown field \"ruby_verison\": known fields are ruby_version, runs_per_instance_type, run_id, aws, azure, local, ruby_bench, debug_mode",
            ),
            // ruby_version.
            (
                json!({"runs_per_instance_type": 3, "aws": ["c8g.medium"]}),
                "missing field \"ruby_version\": give the Ruby version to benchmark, e.g. \"3.4.7\"",
            ),
            (
                with("ruby_version", Value::Null),
                "missing field \"ruby_version\": give the Ruby version to benchmark, e.g. \"3.4.7\"",
            ),
            (
                with("ruby_version", json!(3.4)),
                "\"ruby_version\" must be a string, got 3.4",
            ),
            (
                with("ruby_version", json!(" ")),
                "\"ruby_version\" is empty",
            ),
            (
                with("ruby_version", json!("3.4.7; rm -rf /")),
                "\"ruby_version\" must be an image tag such as \"3.4.7\" (letters, digits, '.', '-', '_'), got \"3.4.7; rm -rf /\"",
            ),
            (
                with("ruby_version", json!("-3.4")),
                "\"ruby_version\" must be an image tag such as \"3.4.7\" (letters, digits, '.', '-', '_'), got \"-3.4\"",
            ),
            // runs_per_instance_type.
            (
                json!({"ruby_version": "3.4.7", "aws": ["c8g.medium"]}),
                "missing field \"runs_per_instance_type\": give how many times to run each instance type, e.g. 3",
            ),
            (
                with("runs_per_instance_type", json!(0)),
                "\"runs_per_instance_type\" must be a positive integer, got 0",
            ),
            (
                with("runs_per_instance_type", json!(-1)),
                "\"runs_per_instance_type\" must be a positive integer, got -1",
            ),
            (
                with("runs_per_instance_type", json!(2.5)),
                "\"runs_per_instance_type\" must be a positive integer, got 2.5",
            ),
            (
                with("runs_per_instance_type", json!("3")),
                "\"runs_per_instance_type\" must be a positive integer, got \"3\"",
            ),
            (
                with("runs_per_instance_type", json!(5_000_000_000u64)),
                "\"runs_per_instance_type\" must be a positive integer, got 5000000000",
            ),
            (
                with("ruby_version", json!("3.4\u{0}")),
                "run config holds a NUL character (\\u0000) at \"ruby_version\": no string may contain one",
            ),
            // run_id.
            (
                with("run_id", json!(0)),
                "\"run_id\" must be a positive integer (Unix seconds), got 0",
            ),
            (
                with("run_id", json!("1733945123")),
                "\"run_id\" must be a positive integer (Unix seconds), got \"1733945123\"",
            ),
            // Provider lists.
            (
                with("aws", json!("c8g.medium")),
                "\"aws\" must be an array of instance type names, got \"c8g.medium\"",
            ),
            (
                with("azure", json!({"a": 1})),
                "\"azure\" must be an array of instance type names, got an object",
            ),
            (
                with("local", json!(["ok", 7])),
                "\"local[1]\" must be a string, got 7",
            ),
            (with("aws", json!([""])), "\"aws[0]\" is empty"),
            (
                with("aws", json!(["c8g medium"])),
                "\"aws[0]\" must be an instance type name such as \"c8g.medium\" (letters, digits, '.', '-', '_'), got \"c8g medium\"",
            ),
            (
                with("local", json!(["../escape"])),
                "\"local[0]\" must be an instance type name such as \"c8g.medium\" (letters, digits, '.', '-', '_'), got \"../escape\"",
            ),
            (
                with("azure", json!(["c8g.medium"])),
                "instance type \"c8g.medium\" appears twice (aws and azure)",
            ),
            (
                with("aws", json!(["c8g.medium", "c7g.medium", "c8g.medium"])),
                "instance type \"c8g.medium\" appears twice in aws",
            ),
            (
                json!({"ruby_version": "3.4.7", "runs_per_instance_type": 3}),
                "no instance types: give at least one of \"aws\", \"azure\", \"local\" a non-empty array",
            ),
            (
                json!({"ruby_version": "3.4.7", "runs_per_instance_type": 3, "aws": [], "azure": []}),
                "no instance types: give at least one of \"aws\", \"azure\", \"local\" a non-empty array",
            ),
            // ruby_bench.
            (
                with_ruby_bench(json!(["fib"])),
                "\"ruby_bench\" must be an object, got an array",
            ),
            (
                with_ruby_bench(json!({"iterations": 3})),
                "unknown field \"ruby_bench.iterations\": known fields are benchmarks, categories, warmup, bench, modes",
            ),
            (
                with_ruby_bench(json!({"benchmarks": "fib"})),
                "\"ruby_bench.benchmarks\" must be an array of benchmark names, got \"fib\"",
            ),
            (
                with_ruby_bench(json!({"benchmarks": ["fib", 1]})),
                "\"ruby_bench.benchmarks[1]\" must be a string, got 1",
            ),
            (
                with_ruby_bench(json!({"benchmarks": [""]})),
                "\"ruby_bench.benchmarks[0]\" \"\" is an empty benchmark name",
            ),
            (
                with_ruby_bench(json!({"benchmarks": ["fib", "liquid render"]})),
                "\"ruby_bench.benchmarks[1]\" \"liquid render\" must not contain whitespace",
            ),
            (
                with_ruby_bench(json!({"benchmarks": ["--harness=once"]})),
                "\"ruby_bench.benchmarks[0]\" \"--harness=once\" must not start with '-'",
            ),
            (
                with_ruby_bench(json!({"benchmarks": ["/^liquid"]})),
                "\"ruby_bench.benchmarks[0]\" \"/^liquid\" is not a valid regex filter: write it as /pattern/",
            ),
            (
                with_ruby_bench(json!({"benchmarks": ["/"]})),
                "\"ruby_bench.benchmarks[0]\" \"/\" is not a valid regex filter: write it as /pattern/",
            ),
            (
                with_ruby_bench(json!({"benchmarks": ["//"]})),
                "\"ruby_bench.benchmarks[0]\" \"//\" is a regex filter with an empty pattern",
            ),
            (
                with_ruby_bench(json!({"categories": "headline"})),
                "\"ruby_bench.categories\" must be an array of categories, got \"headline\"",
            ),
            (
                with_ruby_bench(json!({"categories": ["headline", "ractor"]})),
                "\"ruby_bench.categories[1]\" \"ractor\" is not one of headline, other or micro",
            ),
            (
                with_ruby_bench(json!({"categories": ["micro", "micro"]})),
                "\"ruby_bench.categories\" lists \"micro\" twice",
            ),
            (
                with_ruby_bench(json!({"warmup": -1})),
                "\"ruby_bench.warmup\" must be an integer >= 0, got -1",
            ),
            (
                with_ruby_bench(json!({"warmup": "5"})),
                "\"ruby_bench.warmup\" must be an integer >= 0, got \"5\"",
            ),
            (
                with_ruby_bench(json!({"bench": 0})),
                "\"ruby_bench.bench\" must be an integer >= 1, got 0",
            ),
            (
                with_ruby_bench(json!({"bench": 1.5})),
                "\"ruby_bench.bench\" must be an integer >= 1, got 1.5",
            ),
            (
                with_ruby_bench(json!({"modes": []})),
                "\"ruby_bench.modes\" is empty: give at least one of yjit or interp",
            ),
            (
                with_ruby_bench(json!({"modes": "yjit"})),
                "\"ruby_bench.modes\" must be an array of modes, got \"yjit\"",
            ),
            (
                with_ruby_bench(json!({"modes": ["yjit", "zjit"]})),
                "\"ruby_bench.modes[1]\" \"zjit\" is not one of yjit or interp",
            ),
            (
                with_ruby_bench(json!({"modes": ["yjit", "yjit"]})),
                "\"ruby_bench.modes\" lists \"yjit\" twice",
            ),
            // debug_mode.
            (
                with("debug_mode", json!("yes")),
                "\"debug_mode\" must be true or false, got \"yes\"",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(error_of(input.clone()), expected, "input: {input}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let field = |v: Value| {
            RunConfig::from_value(&v)
                .unwrap_err()
                .field_path()
                .map(str::to_owned)
        };
        assert_eq!(
            field(with("local", json!(["ok", 7]))),
            Some("local[1]".into())
        );
        assert_eq!(
            field(with("azure", json!(["c8g.medium"]))),
            Some("azure[0]".into())
        );
        assert_eq!(
            field(with_ruby_bench(json!({"modes": ["yjit", "yjit"]}))),
            Some("ruby_bench.modes[1]".into())
        );
        assert_eq!(field(json!([])), None);
    }

    #[test]
    fn malformed_json_says_where() {
        let err = RunConfig::from_json(b"{\"ruby_version\": \"3.4.7\",}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "run config is not valid JSON: trailing comma at line 1 column 26"
        );
        let err = RunConfig::from_json(b"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "run config is not valid JSON: EOF while parsing a value at line 1 column 0"
        );
    }

    #[test]
    fn names_agree_with_serde() {
        for provider in Provider::ALL {
            assert_eq!(
                serde_json::to_value(provider).unwrap(),
                json!(provider.as_str())
            );
            assert_eq!(provider.as_str().parse::<Provider>().unwrap(), *provider);
            assert_eq!(provider.to_string(), provider.as_str());
        }
        for mode in Mode::ALL {
            assert_eq!(serde_json::to_value(mode).unwrap(), json!(mode.as_str()));
            assert_eq!(mode.as_str().parse::<Mode>().unwrap(), *mode);
        }
        for category in Category::ALL {
            assert_eq!(
                serde_json::to_value(category).unwrap(),
                json!(category.as_str())
            );
            assert_eq!(
                serde_json::from_value::<Category>(json!(category.as_str())).unwrap(),
                *category
            );
        }
        assert_eq!(
            "gcp".parse::<Provider>().unwrap_err().to_string(),
            "unknown provider \"gcp\": expected aws, azure or local"
        );
    }

    #[test]
    fn categories_read_leniently() {
        let read = |v: Value| serde_json::from_value::<Category>(v).unwrap();
        assert_eq!(read(Value::Null), Category::Other);
        assert_eq!(read(json!("ractor")), Category::Other);
        assert_eq!(read(json!("micro")), Category::Micro);
    }
}
