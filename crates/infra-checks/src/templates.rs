//! `templatefile()` and `file()` calls: the files exist, every template variable is
//! passed and every passed variable used, and in cloud-init YAML every interpolation goes
//! through `jsonencode()` (a JSON string is a YAML string, whatever it holds, so no value
//! can break the YAML or reach a shell unquoted).

use std::collections::BTreeSet;
use std::path::PathBuf;

use hcl::edit::expr::{Expression, FuncCall};
use hcl::edit::template::{Element, Template};
use hcl::edit::visit::{self, Visit};

use crate::Stack;
use crate::stack::{References, object_keys, text};

/// A `templatefile(path, vars)` or `file(path)` call found in a stack.
pub struct FileCall {
    /// `templatefile` or `file`.
    pub function: String,
    /// The path with `${path.module}` resolved against the stack's directory.
    pub path: PathBuf,
    /// Keys of the vars object (templatefile only).
    pub vars: Option<Vec<String>>,
}

#[derive(Default)]
struct FileCalls(Vec<(String, Expression, Option<Expression>)>);

impl Visit for FileCalls {
    fn visit_func_call(&mut self, node: &FuncCall) {
        let name = node.name.name.as_str();
        if node.name.namespace.is_empty()
            && (name == "templatefile" || name == "file")
            && let Some(path) = node.args.get(0)
        {
            self.0
                .push((name.to_owned(), path.clone(), node.args.get(1).cloned()));
        }
        visit::visit_func_call(self, node);
    }
}

/// Every `templatefile()` and `file()` call of the stack.
pub fn file_calls(stack: &Stack) -> Vec<FileCall> {
    let mut calls = FileCalls::default();
    for file in &stack.files {
        calls.visit_body(&file.body);
    }
    calls
        .0
        .into_iter()
        .map(|(function, path, vars)| {
            let raw = text(&path);
            let raw = raw
                .trim_matches('"')
                .replace("${path.module}", &stack.dir.to_string_lossy());
            FileCall {
                function,
                path: PathBuf::from(raw),
                vars: vars.as_ref().and_then(object_keys),
            }
        })
        .collect()
}

/// Problems of the stack's file and template calls.
pub fn template_problems(stack: &Stack) -> Vec<String> {
    let mut problems = Vec::new();
    for call in file_calls(stack) {
        let shown = call.path.display();
        let source = match std::fs::read_to_string(&call.path) {
            Ok(source) => source,
            Err(e) => {
                problems.push(format!(
                    "{}: {}() reads {shown}: {e}",
                    stack.name, call.function
                ));
                continue;
            }
        };
        let Some(vars) = call.vars else {
            continue;
        };
        problems.extend(check_template(
            &format!("{}: {shown}", stack.name),
            &source,
            &vars,
            is_yaml(&call.path),
        ));
    }
    problems
}

fn is_yaml(path: &std::path::Path) -> bool {
    path.to_string_lossy().ends_with(".yaml.tftpl")
}

/// Checks one template's source against the variables passed to it. `yaml` asks for
/// the cloud-init rules: `#cloud-config` first, and `jsonencode()` around every
/// interpolation.
pub fn check_template(name: &str, source: &str, passed: &[String], yaml: bool) -> Vec<String> {
    let template = match hcl::edit::parser::parse_template(source) {
        Ok(t) => t,
        Err(e) => return vec![format!("{name}: not a valid template: {e}")],
    };
    let mut problems = Vec::new();
    let mut refs = References::default();
    refs.visit_template(&template);
    let used: BTreeSet<&str> = refs.roots.iter().map(String::as_str).collect();
    let passed_set: BTreeSet<&str> = passed.iter().map(String::as_str).collect();
    for missing in used.difference(&passed_set) {
        problems.push(format!(
            "{name}: uses ${{{missing}}} but templatefile() does not pass it"
        ));
    }
    for unused in passed_set.difference(&used) {
        problems.push(format!(
            "{name}: templatefile() passes {unused}, which the template never uses"
        ));
    }
    if yaml {
        if !source.starts_with("#cloud-config\n") {
            problems.push(format!(
                "{name}: cloud-init user data must start with #cloud-config"
            ));
        }
        problems.extend(unencoded_interpolations(&template).into_iter().map(|expr| {
            format!("{name}: ${{{expr}}} is not wrapped in jsonencode(); a value with a quote, colon or newline would break the YAML")
        }));
    }
    problems
}

fn unencoded_interpolations(template: &Template) -> Vec<String> {
    let mut found = Vec::new();
    for element in template.iter() {
        match element {
            Element::Interpolation(interpolation) => {
                let encoded = matches!(&interpolation.expr, Expression::FuncCall(call) if call.name.name.as_str() == "jsonencode");
                if !encoded {
                    found.push(text(&interpolation.expr));
                }
            }
            Element::Directive(_) => found.push("%{ directive }".to_owned()),
            Element::Literal(_) => {}
        }
    }
    found
}

/// Renders a template file as `templatefile()` would, with the functions of
/// `crate::functions` (the cloud-init templates use `jsonencode()` only).
pub fn render(
    path: &std::path::Path,
    vars: hcl::Map<String, hcl::Value>,
) -> anyhow::Result<String> {
    use hcl::eval::{Context, Evaluate};

    let source = std::fs::read_to_string(path)?;
    let template: hcl::Template = source
        .parse()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut ctx = Context::new();
    crate::functions::declare(&mut ctx);
    for (name, value) in vars {
        ctx.declare_var(name, value);
    }
    template
        .evaluate(&ctx)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
