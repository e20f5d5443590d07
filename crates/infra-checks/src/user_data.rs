//! A host's user data as Terraform renders it: the `user_data` (AWS) or `custom_data`
//! (Azure) argument of a stack's instance resource, evaluated with hcl-rs over the stack's
//! own variables (the run's `<stack>.tfvars.json` over the declared defaults), its `locals`
//! and its `templatefile()`/`file()` calls. What only a provider knows at apply time (a
//! random password, the bucket's name, an Elastic IP, an instance type's vCPUs) is given
//! by the caller. `tests/system/hosts.rs` boots hosts from this.
//!
//! Not evaluated: variable validations and type conversions (the values are taken as
//! given), and anything the user data does not depend on.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use hcl::Value;
use hcl::edit::expr::FuncCall;
use hcl::edit::structure::Body;
use hcl::edit::visit::{self, Visit};
use hcl::eval::{Context, Evaluate};

use crate::Stack;
use crate::stack::attr;

/// What a host's user data is rendered from.
pub struct HostInputs {
    /// The stack's variables as the master script writes them (`<stack>.tfvars.json`);
    /// variables left out take their declared defaults.
    pub tfvars: serde_json::Value,
    /// What the providers answer at apply time, by resource type and name (and `data`
    /// for data sources), e.g. `{"random_password": {"api_key": {"result": "..."}}}`.
    pub known: serde_json::Value,
}

/// The cloud-config text the host's cloud-init reads from the resource `address`
/// (`aws_instance.runner`), for the `for_each` key `instance` when the resource has one.
/// Azure's `custom_data` is base64 in Terraform and decoded by Azure before cloud-init.
pub fn render_user_data(
    stack: &Stack,
    address: &str,
    instance: Option<&str>,
    inputs: &HostInputs,
) -> anyhow::Result<String> {
    let (ctx, body) = resource_context(stack, address, instance, inputs)?;
    if let Some(expr) = attr(body, "user_data") {
        return as_string(evaluate(&ctx, expr, &format!("{address}.user_data"))?);
    }
    if let Some(expr) = attr(body, "custom_data") {
        let encoded = as_string(evaluate(&ctx, expr, &format!("{address}.custom_data"))?)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .with_context(|| format!("{address}.custom_data is not base64"))?;
        return String::from_utf8(bytes).with_context(|| format!("{address}.custom_data"));
    }
    bail!("{address} has neither user_data nor custom_data")
}

/// One argument of a resource (`value` of `aws_ssm_parameter.runner_env`), evaluated as
/// [`render_user_data`] evaluates the user data: what Terraform would send the provider.
pub fn resource_argument(
    stack: &Stack,
    address: &str,
    instance: Option<&str>,
    argument: &str,
    inputs: &HostInputs,
) -> anyhow::Result<Value> {
    let (ctx, body) = resource_context(stack, address, instance, inputs)?;
    let expr = attr(body, argument).with_context(|| format!("{address} has no {argument}"))?;
    evaluate(&ctx, expr, &format!("{address}.{argument}"))
}

/// The `templatefile()` call inside the resource's user data, evaluated as
/// [`render_user_data`] does: the template's path and its variables. A caller that has to
/// add to one (a stand-in's setting) renders them with [`crate::templates::render`].
pub fn template_call(
    stack: &Stack,
    address: &str,
    instance: Option<&str>,
    inputs: &HostInputs,
) -> anyhow::Result<(PathBuf, hcl::Map<String, Value>)> {
    let (ctx, body) = resource_context(stack, address, instance, inputs)?;
    let expr = attr(body, "user_data")
        .or_else(|| attr(body, "custom_data"))
        .with_context(|| format!("{address} has neither user_data nor custom_data"))?;
    let mut calls = TemplateCalls::default();
    calls.visit_expr(expr);
    let [call] = calls.0.as_slice() else {
        bail!(
            "{address}: expected one templatefile() call in its user data, found {}",
            calls.0.len()
        );
    };
    let (Some(path), Some(vars)) = (call.args.get(0), call.args.get(1)) else {
        bail!("{address}: templatefile() needs a path and variables");
    };
    let path = as_string(evaluate(
        &ctx,
        path,
        &format!("{address}: the template's path"),
    )?)?;
    match evaluate(&ctx, vars, &format!("{address}: the template's variables"))? {
        Value::Object(vars) => Ok((PathBuf::from(path), vars)),
        other => bail!("{address}: the template's variables are not an object: {other}"),
    }
}

#[derive(Default)]
struct TemplateCalls(Vec<FuncCall>);

impl Visit for TemplateCalls {
    fn visit_func_call(&mut self, node: &FuncCall) {
        if node.name.namespace.is_empty() && node.name.name.as_str() == "templatefile" {
            self.0.push(node.clone());
        }
        visit::visit_func_call(self, node);
    }
}

/// The stack's context with `each` (and `count`) of one instance of the resource, and the
/// resource's body.
fn resource_context<'s>(
    stack: &'s Stack,
    address: &str,
    instance: Option<&str>,
    inputs: &HostInputs,
) -> anyhow::Result<(Context<'static>, &'s Body)> {
    let (kind, name) = address
        .split_once('.')
        .with_context(|| format!("{address}: expected <type>.<name>"))?;
    let resource = stack
        .resources_of(kind)
        .into_iter()
        .find(|r| r.name == name)
        .with_context(|| format!("{}: no resource {address}", stack.name))?;
    let mut ctx = stack_context(stack, inputs)?;
    if let Some(for_each) = attr(resource.body, "for_each") {
        let instances = evaluate(&ctx, for_each, &format!("{address}.for_each"))?;
        let key = instance.with_context(|| format!("{address} has for_each: name an instance"))?;
        let Value::Object(instances) = instances else {
            bail!("{address}.for_each is not a map: {instances}");
        };
        let value = instances.get(key).cloned().with_context(|| {
            let known: Vec<&String> = instances.keys().collect();
            format!("{address} has no instance {key:?}; it has {known:?}")
        })?;
        let mut each = hcl::Map::new();
        each.insert("key".to_owned(), Value::from(key));
        each.insert("value".to_owned(), value);
        ctx.declare_var("each", Value::Object(each));
    }
    if attr(resource.body, "count").is_some() {
        let mut count = hcl::Map::new();
        count.insert("index".to_owned(), Value::from(0));
        ctx.declare_var("count", Value::Object(count));
    }
    Ok((ctx, resource.body))
}

/// The evaluation context of a stack: functions, `path.module`, `var`, what the caller
/// knows of resources, and every `local` that can be evaluated from those.
fn stack_context(stack: &Stack, inputs: &HostInputs) -> anyhow::Result<Context<'static>> {
    let mut ctx = Context::new();
    crate::functions::declare(&mut ctx);
    let mut path = hcl::Map::new();
    path.insert(
        "module".to_owned(),
        Value::from(stack.dir.to_string_lossy().into_owned()),
    );
    ctx.declare_var("path", Value::Object(path));

    let serde_json::Value::Object(tfvars) = &inputs.tfvars else {
        bail!("the tfvars of {} are not a JSON object", stack.name);
    };
    let mut vars = hcl::Map::new();
    for (name, body) in stack.variables() {
        let value = match tfvars.get(name) {
            Some(value) => hcl::to_value(value)?,
            None => match attr(body, "default") {
                Some(default) => evaluate(&ctx, default, &format!("default of var.{name}"))?,
                // Unset and without a default: Terraform would refuse the plan; here it
                // is an error only if the user data needs it.
                None => continue,
            },
        };
        vars.insert(name.to_owned(), value);
    }
    for name in tfvars.keys() {
        if stack.variable(name).is_none() {
            bail!(
                "{}: the tfvars set {name}, which the stack does not declare",
                stack.name
            );
        }
    }
    ctx.declare_var("var", Value::Object(vars));

    let serde_json::Value::Object(known) = &inputs.known else {
        bail!("the known values of {} are not a JSON object", stack.name);
    };
    for (root, value) in known {
        ctx.declare_var(root.clone(), hcl::to_value(value)?);
    }

    // Locals in dependency order, found by trying again until nothing more evaluates; a
    // local that needs something unknown (a data source nobody gave) stays undefined.
    let mut pending: Vec<_> = stack
        .locals()
        .into_iter()
        .map(|a| {
            (
                a.key.as_str().to_owned(),
                hcl::Expression::from(a.value.clone()),
            )
        })
        .collect();
    let mut locals = hcl::Map::new();
    loop {
        ctx.declare_var("local", Value::Object(locals.clone()));
        let before = pending.len();
        pending.retain(|(name, expr)| match expr.evaluate(&ctx) {
            Ok(value) => {
                locals.insert(name.clone(), value);
                false
            }
            Err(_) => true,
        });
        if pending.len() == before {
            break;
        }
    }
    ctx.declare_var("local", Value::Object(locals));
    Ok(ctx)
}

fn evaluate(
    ctx: &Context,
    expr: &hcl::edit::expr::Expression,
    what: &str,
) -> anyhow::Result<Value> {
    hcl::Expression::from(expr.clone())
        .evaluate(ctx)
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

fn as_string(value: Value) -> anyhow::Result<String> {
    match value {
        Value::String(s) => Ok(s),
        other => bail!("expected a string, got {other}"),
    }
}
