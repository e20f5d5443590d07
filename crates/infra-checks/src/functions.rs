//! The Terraform functions the stacks' expressions use, for hcl-rs's evaluator: the
//! runner counts (`counts`), the cloud-init templates (`templates`) and the hosts' user
//! data (`user_data`) are evaluated with the same set. Each behaves as Terraform's does
//! for the arguments the stacks pass; anything else is an error, never a guess.

use std::path::Path;

use base64::Engine as _;
use hcl::Value;
use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};

type Function = fn(FuncArgs) -> Result<Value, String>;

/// Declares every function of this module in `ctx`.
pub fn declare(ctx: &mut Context) {
    let number = |f: Function| FuncDef::builder().param(ParamType::Number).build(f);
    let numbers = |f: Function| {
        FuncDef::builder()
            .variadic_param(ParamType::Number)
            .build(f)
    };
    let any = |f: Function| FuncDef::builder().param(ParamType::Any).build(f);
    let string = |f: Function| FuncDef::builder().param(ParamType::String).build(f);
    ctx.declare_func("ceil", number(ceil));
    ctx.declare_func("floor", number(floor));
    ctx.declare_func("max", numbers(max));
    ctx.declare_func("min", numbers(min));
    ctx.declare_func(
        "contains",
        FuncDef::builder()
            .param(ParamType::array_of(ParamType::Any))
            .param(ParamType::Any)
            .build(contains),
    );
    ctx.declare_func("jsonencode", any(jsonencode));
    ctx.declare_func("tostring", any(tostring));
    ctx.declare_func("keys", any(keys));
    ctx.declare_func("length", any(length));
    ctx.declare_func("sort", any(sort));
    ctx.declare_func("toset", any(toset));
    ctx.declare_func("lower", string(lower));
    ctx.declare_func("file", string(file));
    ctx.declare_func("base64encode", string(base64encode));
    ctx.declare_func(
        "join",
        FuncDef::builder()
            .param(ParamType::String)
            .param(ParamType::array_of(ParamType::Any))
            .build(join),
    );
    ctx.declare_func(
        "replace",
        FuncDef::builder()
            .param(ParamType::String)
            .param(ParamType::String)
            .param(ParamType::String)
            .build(replace),
    );
    ctx.declare_func(
        "lookup",
        FuncDef::builder()
            .param(ParamType::Any)
            .param(ParamType::String)
            .param(ParamType::Any)
            .build(lookup),
    );
    ctx.declare_func(
        "merge",
        FuncDef::builder()
            .variadic_param(ParamType::Any)
            .build(merge),
    );
    ctx.declare_func("range", numbers(range));
    ctx.declare_func(
        "templatefile",
        FuncDef::builder()
            .param(ParamType::String)
            .param(ParamType::Any)
            .build(templatefile),
    );
}

fn number(value: &Value) -> Result<f64, String> {
    value
        .as_number()
        .and_then(|n| n.as_f64())
        .ok_or_else(|| format!("expected a number, got {value}"))
}

fn from_f64(x: f64) -> Result<Value, String> {
    // Whole numbers stay integers, so that they print as Terraform prints them ("2").
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        return Ok(Value::from(x as i64));
    }
    hcl::Number::from_f64(x)
        .map(Value::Number)
        .ok_or_else(|| format!("{x} is not a finite number"))
}

fn string_of<'a>(value: &'a Value, what: &str) -> Result<&'a str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("{what}: expected a string, got {value}"))
}

fn contains(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Array(items) => Ok(Value::Bool(items.contains(&args[1]))),
        other => Err(format!("expected a list, got {other}")),
    }
}

fn ceil(args: FuncArgs) -> Result<Value, String> {
    from_f64(number(&args[0])?.ceil())
}

fn floor(args: FuncArgs) -> Result<Value, String> {
    from_f64(number(&args[0])?.floor())
}

fn max(args: FuncArgs) -> Result<Value, String> {
    let numbers = args.iter().map(number).collect::<Result<Vec<_>, _>>()?;
    from_f64(numbers.into_iter().fold(f64::NEG_INFINITY, f64::max))
}

fn min(args: FuncArgs) -> Result<Value, String> {
    let numbers = args.iter().map(number).collect::<Result<Vec<_>, _>>()?;
    from_f64(numbers.into_iter().fold(f64::INFINITY, f64::min))
}

/// Terraform's `jsonencode` writes `<`, `>`, `&`, U+2028 and U+2029 as `\u` escapes (Go's
/// encoder); a JSON document has those characters only inside strings, so replacing them
/// in the whole output is the same.
fn jsonencode(args: FuncArgs) -> Result<Value, String> {
    let json = serde_json::to_string(&args[0]).map_err(|e| e.to_string())?;
    let mut escaped = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => escaped.push_str("\\u003c"),
            '>' => escaped.push_str("\\u003e"),
            '&' => escaped.push_str("\\u0026"),
            '\u{2028}' => escaped.push_str("\\u2028"),
            '\u{2029}' => escaped.push_str("\\u2029"),
            c => escaped.push(c),
        }
    }
    Ok(Value::from(escaped))
}

fn tostring(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Null => Ok(Value::Null),
        Value::String(s) => Ok(Value::from(s.clone())),
        Value::Number(n) => Ok(Value::from(n.to_string())),
        Value::Bool(b) => Ok(Value::from(b.to_string())),
        other => Err(format!("tostring: cannot convert {other} to a string")),
    }
}

/// Terraform lists a map's keys in lexicographic order.
fn keys(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Object(map) => {
            let mut names: Vec<&String> = map.keys().collect();
            names.sort();
            Ok(Value::Array(
                names.into_iter().map(|k| Value::from(k.clone())).collect(),
            ))
        }
        other => Err(format!("keys: expected a map, got {other}")),
    }
}

fn length(args: FuncArgs) -> Result<Value, String> {
    let n = match &args[0] {
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        Value::String(s) => s.chars().count(),
        other => return Err(format!("length: expected a collection, got {other}")),
    };
    Ok(Value::from(n as u64))
}

fn sorted_strings(value: &Value, what: &str) -> Result<Vec<String>, String> {
    let Value::Array(items) = value else {
        return Err(format!("{what}: expected a list, got {value}"));
    };
    let mut strings = items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(format!("{what}: expected strings, got {other}")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    strings.sort();
    Ok(strings)
}

fn sort(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Array(
        sorted_strings(&args[0], "sort")?
            .into_iter()
            .map(Value::from)
            .collect(),
    ))
}

/// A set of strings iterates in lexicographic order in Terraform.
fn toset(args: FuncArgs) -> Result<Value, String> {
    let mut strings = sorted_strings(&args[0], "toset")?;
    strings.dedup();
    Ok(Value::Array(strings.into_iter().map(Value::from).collect()))
}

fn lower(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::from(string_of(&args[0], "lower")?.to_lowercase()))
}

fn replace(args: FuncArgs) -> Result<Value, String> {
    let text = string_of(&args[0], "replace")?;
    let search = string_of(&args[1], "replace")?;
    if search.len() > 1 && search.starts_with('/') && search.ends_with('/') {
        return Err("replace: regular expressions are not supported here".to_owned());
    }
    Ok(Value::from(
        text.replace(search, string_of(&args[2], "replace")?),
    ))
}

fn join(args: FuncArgs) -> Result<Value, String> {
    let separator = string_of(&args[0], "join")?;
    let Value::Array(items) = &args[1] else {
        return Err(format!("join: expected a list, got {}", args[1]));
    };
    let parts = items
        .iter()
        .map(|item| string_of(item, "join").map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Value::from(parts.join(separator)))
}

fn lookup(args: FuncArgs) -> Result<Value, String> {
    let Value::Object(map) = &args[0] else {
        return Err(format!("lookup: expected a map, got {}", args[0]));
    };
    let key = string_of(&args[1], "lookup")?;
    Ok(map.get(key).cloned().unwrap_or_else(|| args[2].clone()))
}

/// Later maps win; null arguments are skipped, as Terraform does.
fn merge(args: FuncArgs) -> Result<Value, String> {
    let mut merged = hcl::Map::new();
    for arg in args.iter() {
        match arg {
            Value::Null => {}
            Value::Object(map) => {
                for (key, value) in map {
                    merged.insert(key.clone(), value.clone());
                }
            }
            other => return Err(format!("merge: expected maps, got {other}")),
        }
    }
    Ok(Value::Object(merged))
}

fn range(args: FuncArgs) -> Result<Value, String> {
    let numbers = args.iter().map(number).collect::<Result<Vec<_>, _>>()?;
    let (start, limit, step) = match numbers.as_slice() {
        [limit] => (0.0, *limit, 1.0),
        [start, limit] => (*start, *limit, 1.0),
        [start, limit, step] if *step != 0.0 => (*start, *limit, *step),
        _ => return Err("range: expected one to three numbers, the step not 0".to_owned()),
    };
    let mut values = Vec::new();
    let mut x = start;
    while (step > 0.0 && x < limit) || (step < 0.0 && x > limit) {
        values.push(from_f64(x)?);
        x += step;
    }
    Ok(Value::Array(values))
}

fn file(args: FuncArgs) -> Result<Value, String> {
    let path = string_of(&args[0], "file")?;
    std::fs::read_to_string(path)
        .map(Value::from)
        .map_err(|e| format!("file({path}): {e}"))
}

fn base64encode(args: FuncArgs) -> Result<Value, String> {
    let text = string_of(&args[0], "base64encode")?;
    Ok(Value::from(
        base64::engine::general_purpose::STANDARD.encode(text),
    ))
}

fn templatefile(args: FuncArgs) -> Result<Value, String> {
    let path = string_of(&args[0], "templatefile")?;
    let Value::Object(vars) = &args[1] else {
        return Err(format!(
            "templatefile: expected an object of variables, got {}",
            args[1]
        ));
    };
    crate::templates::render(Path::new(path), vars.clone())
        .map(Value::from)
        .map_err(|e| format!("{e:#}"))
}
