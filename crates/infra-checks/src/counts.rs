//! Runner counts: the stacks' `locals` (`vcpus`, `threads_per_core`, `slots`,
//! `runner_count`) evaluated with hcl-rs for a sample config, and the same arithmetic
//! written out here, so that a changed formula shows up as a failing test.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use hcl::Value;
use hcl::eval::{Context, Evaluate};

use crate::Stack;
use crate::stack::attr;

/// What the provider's data says about one instance type.
#[derive(Debug, Clone)]
pub struct TypeFacts {
    /// The instance type's name.
    pub name: String,
    /// vCPUs of one instance.
    pub vcpus: u64,
    /// Hardware threads per core: 2 where SMT is on.
    pub threads_per_core: u64,
    /// `x86_64` or `arm64`.
    pub arch: &'static str,
}

/// What a stack's locals say about each instance type of a sample config.
#[derive(Debug)]
pub struct RunnerPlan {
    /// Worker slots per instance (`local.slots`).
    pub slots: BTreeMap<String, u64>,
    /// Instances per type (`local.runner_count`).
    pub runner_count: BTreeMap<String, u64>,
    /// Image architecture per type (`local.arch`), when the stack defines it.
    pub arch: BTreeMap<String, String>,
}

/// A run config as far as runner counts go.
#[derive(Debug, Clone)]
pub struct SampleConfig {
    /// Tasks per instance type.
    pub runs_per_instance_type: u64,
    /// `vcpu` or `core`.
    pub slot_mode: &'static str,
    /// The instance types and their facts.
    pub types: Vec<TypeFacts>,
}

/// Slots per instance: one per vCPU, or one per physical core in `core` mode (at least
/// one).
pub fn expected_slots(config: &SampleConfig, facts: &TypeFacts) -> u64 {
    match config.slot_mode {
        "core" => (facts.vcpus / facts.threads_per_core).max(1),
        _ => facts.vcpus,
    }
}

/// Instances per type: ceil(runs_per_instance_type / slots), as docs/decisions.md says.
pub fn expected_runner_counts(config: &SampleConfig) -> BTreeMap<String, u64> {
    config
        .types
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                config
                    .runs_per_instance_type
                    .div_ceil(expected_slots(config, t)),
            )
        })
        .collect()
}

/// Where a stack's `local.vcpus` and `local.threads_per_core` come from.
pub enum TypeSource {
    /// AWS: `data.aws_ec2_instance_type.<name>` for each type, filled from the sample's
    /// facts (the provider's answer, which cannot be asked offline).
    AwsDataSource(&'static str),
    /// Azure: the default of this variable (a map of size descriptions), as committed.
    VariableDefault(&'static str),
}

/// Evaluates the stack's `vcpus`, `threads_per_core`, `slots`, `runner_count` and (when
/// defined) `arch` locals for the sample config.
pub fn evaluate_runner_counts(
    stack: &Stack,
    config: &SampleConfig,
    source: &TypeSource,
) -> anyhow::Result<RunnerPlan> {
    let mut ctx = Context::new();
    crate::functions::declare(&mut ctx);

    let mut vars = hcl::Map::new();
    vars.insert(
        "instance_types".to_owned(),
        Value::Array(
            config
                .types
                .iter()
                .map(|t| Value::from(t.name.clone()))
                .collect(),
        ),
    );
    vars.insert(
        "runs_per_instance_type".to_owned(),
        Value::from(config.runs_per_instance_type),
    );
    vars.insert("slot_mode".to_owned(), Value::from(config.slot_mode));

    match source {
        TypeSource::AwsDataSource(name) => {
            let facts: hcl::Map<String, Value> = config
                .types
                .iter()
                .map(|t| {
                    let mut d = hcl::Map::new();
                    d.insert("default_vcpus".to_owned(), Value::from(t.vcpus));
                    d.insert(
                        "default_threads_per_core".to_owned(),
                        Value::from(t.threads_per_core),
                    );
                    // As EC2 reports them: x86 types also list i386.
                    let architectures: Vec<Value> = match t.arch {
                        "arm64" => vec![Value::from("arm64")],
                        _ => vec![Value::from("i386"), Value::from("x86_64")],
                    };
                    d.insert(
                        "supported_architectures".to_owned(),
                        Value::Array(architectures),
                    );
                    (t.name.clone(), Value::Object(d))
                })
                .collect();
            let mut by_name = hcl::Map::new();
            by_name.insert((*name).to_owned(), Value::Object(facts));
            let mut data = hcl::Map::new();
            data.insert("aws_ec2_instance_type".to_owned(), Value::Object(by_name));
            ctx.declare_var("data", Value::Object(data));
        }
        TypeSource::VariableDefault(name) => {
            let default = stack
                .variable(name)
                .and_then(|body| attr(body, "default"))
                .with_context(|| format!("{}: variable \"{name}\" has no default", stack.name))?;
            let value = hcl::Expression::from(default.clone())
                .evaluate(&ctx)
                .map_err(|e| anyhow::anyhow!("{}: default of {name}: {e}", stack.name))?;
            vars.insert((*name).to_owned(), value);
        }
    }
    ctx.declare_var("var", Value::Object(vars));

    let mut locals = hcl::Map::new();
    let mut names = vec!["vcpus", "threads_per_core", "slots", "runner_count"];
    if stack.local("arch").is_some() {
        names.push("arch");
    }
    for name in names {
        let expr = stack
            .local(name)
            .with_context(|| format!("{}: no local value \"{name}\"", stack.name))?;
        ctx.declare_var("local", Value::Object(locals.clone()));
        let value = hcl::Expression::from(expr.clone())
            .evaluate(&ctx)
            .map_err(|e| anyhow::anyhow!("{}: local.{name}: {e}", stack.name))?;
        locals.insert(name.to_owned(), value);
    }
    let arch = match locals.get("arch") {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v.as_str() {
                Some(a) => Ok((k.clone(), a.to_owned())),
                None => bail!("{}: local.arch[{k}] is not a string: {v}", stack.name),
            })
            .collect::<anyhow::Result<_>>()?,
        Some(other) => bail!("{}: local.arch is not an object: {other}", stack.name),
        None => BTreeMap::new(),
    };
    Ok(RunnerPlan {
        slots: whole_numbers(&locals["slots"])?,
        runner_count: whole_numbers(&locals["runner_count"])?,
        arch,
    })
}

fn whole_numbers(value: &Value) -> anyhow::Result<BTreeMap<String, u64>> {
    let Value::Object(map) = value else {
        bail!("expected an object of numbers, got {value}");
    };
    map.iter()
        .map(|(k, v)| match v.as_number().and_then(|n| n.as_u64()) {
            Some(n) => Ok((k.clone(), n)),
            None => bail!("{k}: expected a whole number, got {v}"),
        })
        .collect()
}
