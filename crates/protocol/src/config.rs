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
    Fields, Result, ValidationError, describe, into_object, parse_object, quoted, string_items,
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
    pub fn from_value(value: Value) -> Result<Self, ConfigError> {
        let map = into_object(value, "run config")?;
        Self::from_map(&map)
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

        let ruby_version =
            fields.required_text("ruby_version", "give the Ruby version to benchmark, e.g. \"3.4.7\"")?;
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

        let mut lists: Vec<(Provider, Vec<String>)> = Vec::new();
        for &provider in Provider::ALL {
            lists.push((provider, instance_type_list(&fields, provider)?));
        }
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

        let mut lists = lists.into_iter().map(|(_, types)| types);
        let mut next = || lists.next().unwrap_or_default();
        Ok(Self {
            ruby_version,
            runs_per_instance_type,
            run_id,
            aws: next(),
            azure: next(),
            local: next(),
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
        Self::from_value(value)
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
            return Err(ValidationError::field(&path, format!("{} is empty", quoted(&path))));
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
fn check_repeats(lists: &[(Provider, Vec<String>)]) -> Result<()> {
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
                    format!("instance type {} appears twice {where_}", quoted(instance_type)),
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
