//! The checks. Each returns the problems it found, one sentence each, naming the stack
//! and the block; an empty list means the check passed.

use std::collections::BTreeSet;

use hcl::edit::expr::Expression;
use hcl::edit::structure::Body;

use crate::stack::{RESOURCE_PREFIXES, Stack, as_bool, as_str, as_u64, attr, object_keys, text};

/// Tag keys every resource of a run carries.
pub const REQUIRED_TAG_KEYS: [&str; 2] = ["Project", "RunId"];

/// AWS resource types whose volumes default_tags do not reach, and the attribute that
/// tags them instead.
pub const AWS_EXPLICIT_TAGS: [(&str, &str); 1] = [("aws_instance", "volume_tags")];

/// azurerm resource types the stacks use that take `tags`: each must set them.
pub const AZURE_TAGGABLE: [&str; 10] = [
    "azurerm_resource_group",
    "azurerm_virtual_network",
    "azurerm_public_ip",
    "azurerm_nat_gateway",
    "azurerm_network_security_group",
    "azurerm_network_interface",
    "azurerm_linux_virtual_machine",
    "azurerm_user_assigned_identity",
    "azurerm_key_vault",
    "azurerm_key_vault_secret",
];

/// azurerm resource types the stacks use that take no `tags` (associations, subnets,
/// role assignments).
pub const AZURE_UNTAGGABLE: [&str; 6] = [
    "azurerm_subnet",
    "azurerm_nat_gateway_public_ip_association",
    "azurerm_subnet_nat_gateway_association",
    "azurerm_subnet_network_security_group_association",
    "azurerm_role_assignment",
    "azurerm_role_definition",
];

/// The only actions an Azure role of the stacks may grant: a runner VM deallocating itself.
pub const AZURE_ROLE_ACTIONS: [&str; 1] = ["Microsoft.Compute/virtualMachines/deallocate/action"];

/// Ports that must never be open to the whole internet: SSH and Postgres.
pub const ADMIN_PORTS: [u16; 2] = [22, 5432];

/// Outputs of the meta stack that the master script passes to the provider stacks as
/// variables of the same name, by stack.
pub const WIRED_FROM_META: [(&str, &[&str]); 2] = [
    (
        "aws",
        &[
            "orchestrator_url",
            "runner_api_key",
            "ssh_public_key",
            "meta_region",
            "meta_vpc_id",
            "meta_vpc_cidr",
            "meta_route_table_id",
            "bastion_private_ip",
        ],
    ),
    (
        "azure",
        &["orchestrator_url", "runner_api_key", "ssh_public_key"],
    ),
];

/// Required variables (no default) the master script fills from the run config, its own
/// flags or the images it uploaded; with WIRED_FROM_META, the whole input of each stack.
pub const RUN_INPUTS: [&str; 7] = [
    "run_id",
    "region",
    "instance_types",
    "runs_per_instance_type",
    "allowed_ssh_cidr",
    "runner_image_urls",
    "ruby_bench_commit",
];

/// References to variables, locals, resources and data sources that the stack does not
/// declare.
pub fn undeclared_references(stack: &Stack) -> Vec<String> {
    let refs = stack.references();
    let mut problems = Vec::new();

    let variables: BTreeSet<&str> = stack.variables().into_iter().map(|(n, _)| n).collect();
    for name in refs.under("var") {
        if !variables.contains(name.as_str()) {
            problems.push(format!(
                "{}: var.{name} is used but no variable \"{name}\" is declared",
                stack.name
            ));
        }
    }

    let locals: BTreeSet<String> = stack
        .locals()
        .iter()
        .map(|a| a.key.as_str().to_owned())
        .collect();
    for name in refs.under("local") {
        if !locals.contains(&name) {
            problems.push(format!(
                "{}: local.{name} is used but no local value \"{name}\" is defined",
                stack.name
            ));
        }
    }

    let data: BTreeSet<String> = stack.data_sources().iter().map(|r| r.address()).collect();
    for path in refs.paths.iter().filter(|p| p.len() >= 3 && p[0] == "data") {
        let address = format!("{}.{}", path[1], path[2]);
        if !data.contains(&address) {
            problems.push(format!(
                "{}: data.{address} is used but not declared",
                stack.name
            ));
        }
    }

    let providers: BTreeSet<String> = stack
        .blocks("provider")
        .filter_map(|b| {
            let name = b.labels.first()?.as_str();
            Some(match attr(&b.body, "alias").and_then(as_str) {
                Some(alias) => format!("{name}.{alias}"),
                None => name.to_owned(),
            })
        })
        .collect();
    for resource in stack.resources().iter().chain(stack.data_sources().iter()) {
        if let Some(provider) = attr(resource.body, "provider").map(text)
            && !providers.contains(&provider)
        {
            problems.push(format!(
                "{}: {} uses provider {provider}, which no provider block configures",
                stack.name,
                resource.address()
            ));
        }
    }

    let resources: BTreeSet<String> = stack.resources().iter().map(|r| r.address()).collect();
    for path in refs.paths.iter().filter(|p| {
        p.len() >= 2
            && RESOURCE_PREFIXES
                .iter()
                .any(|prefix| p[0].starts_with(prefix))
    }) {
        let address = format!("{}.{}", path[0], path[1]);
        if !resources.contains(&address) {
            problems.push(format!(
                "{}: {address} is used but no such resource is declared",
                stack.name
            ));
        }
    }
    problems
}

/// Variables that nothing uses: an input the master script sets that changes nothing is
/// a bug waiting to be believed.
pub fn unused_variables(stack: &Stack) -> Vec<String> {
    let used = stack.references().under("var");
    stack
        .variables()
        .into_iter()
        .filter(|(name, _)| !used.contains(*name))
        .map(|(name, _)| {
            format!(
                "{}: variable \"{name}\" is declared but never used",
                stack.name
            )
        })
        .collect()
}

/// Outputs whose value refers to nothing the stack declares are caught by
/// [`undeclared_references`]; this checks the wiring between stacks: each meta output a
/// provider stack takes exists, the provider stack declares the variable, and every
/// required variable is either wired from meta or a known run input.
pub fn unwired_inputs(meta: &Stack, provider: &Stack, wired: &[&str]) -> Vec<String> {
    let outputs: BTreeSet<&str> = meta.outputs().into_iter().map(|(n, _)| n).collect();
    let mut problems = Vec::new();
    for name in wired {
        if !outputs.contains(name) {
            problems.push(format!(
                "{}: takes {name} from the meta stack, which has no output \"{name}\"",
                provider.name
            ));
        }
        if provider.variable(name).is_none() {
            problems.push(format!(
                "{}: is wired {name} from the meta stack but declares no variable \"{name}\"",
                provider.name
            ));
        }
    }
    for (name, body) in provider.variables() {
        if attr(body, "default").is_none() && !wired.contains(&name) && !RUN_INPUTS.contains(&name)
        {
            problems.push(format!(
                "{}: required variable \"{name}\" is neither wired from the meta stack nor a run input the master script sets",
                provider.name
            ));
        }
    }
    problems
}

/// AWS: every `provider "aws"` block has `default_tags` with the project and run keys.
/// Azure: every azurerm resource of a taggable type sets `tags`, and every azurerm type
/// in use is known to be taggable or not. Both: the explicit tags where default tags do
/// not reach.
pub fn untagged_resources(stack: &Stack) -> Vec<String> {
    let mut problems = Vec::new();
    for provider in stack.blocks("provider").filter(|b| b.has_labels(&["aws"])) {
        let alias = attr(&provider.body, "alias")
            .and_then(as_str)
            .unwrap_or("default");
        let tags = provider
            .body
            .get_blocks("default_tags")
            .next()
            .and_then(|b| attr(&b.body, "tags"));
        match tags {
            None => problems.push(format!(
                "{}: provider \"aws\" ({alias}) has no default_tags {{ tags = ... }}",
                stack.name
            )),
            Some(tags) => {
                if let Some(missing) = missing_tag_keys(stack, tags) {
                    problems.push(format!(
                        "{}: default_tags of provider \"aws\" ({alias}) lack {missing}",
                        stack.name
                    ));
                }
            }
        }
    }

    for resource in stack.resources() {
        if let Some((_, attribute)) = AWS_EXPLICIT_TAGS
            .iter()
            .find(|(kind, _)| *kind == resource.kind)
        {
            match attr(resource.body, attribute) {
                None => problems.push(format!(
                    "{}: {} has no {attribute} (default_tags do not reach what it creates)",
                    stack.name,
                    resource.address()
                )),
                Some(tags) => {
                    if let Some(missing) = missing_tag_keys(stack, tags) {
                        problems.push(format!(
                            "{}: {attribute} of {} lack {missing}",
                            stack.name,
                            resource.address()
                        ));
                    }
                }
            }
        }
        if !resource.kind.starts_with("azurerm_") {
            continue;
        }
        if AZURE_TAGGABLE.contains(&resource.kind) {
            match attr(resource.body, "tags") {
                None => problems.push(format!(
                    "{}: {} has no tags",
                    stack.name,
                    resource.address()
                )),
                Some(tags) => {
                    if let Some(missing) = missing_tag_keys(stack, tags) {
                        problems.push(format!(
                            "{}: tags of {} lack {missing}",
                            stack.name,
                            resource.address()
                        ));
                    }
                }
            }
        } else if !AZURE_UNTAGGABLE.contains(&resource.kind) {
            problems.push(format!(
                "{}: {} is of a type infra-checks does not know: add it to AZURE_TAGGABLE or AZURE_UNTAGGABLE",
                stack.name,
                resource.address()
            ));
        }
    }
    problems
}

/// `None` when a tags expression certainly holds the required keys, else which are
/// missing. The expression may be an object, `local.x`, or `merge(...)` of those.
fn missing_tag_keys(stack: &Stack, tags: &Expression) -> Option<String> {
    let keys = tag_keys(stack, tags);
    let missing: Vec<&str> = REQUIRED_TAG_KEYS
        .iter()
        .copied()
        .filter(|k| !keys.contains(*k))
        .collect();
    (!missing.is_empty()).then(|| missing.join(" and "))
}

fn tag_keys(stack: &Stack, expr: &Expression) -> BTreeSet<String> {
    match expr {
        Expression::Object(_) => object_keys(expr).unwrap_or_default().into_iter().collect(),
        Expression::Traversal(_) => {
            let path = text(expr);
            path.strip_prefix("local.")
                .and_then(|name| stack.local(name))
                .map(|local| tag_keys(stack, local))
                .unwrap_or_default()
        }
        Expression::FuncCall(call) if call.name.name.as_str() == "merge" => call
            .args
            .iter()
            .flat_map(|arg| tag_keys(stack, arg))
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// Security-group and NSG rules that let the whole internet reach SSH or Postgres.
pub fn world_open_admin_ports(stack: &Stack) -> Vec<String> {
    let mut problems = Vec::new();
    let mut flag = |what: String, ports: Option<(u64, u64)>| {
        for port in ADMIN_PORTS {
            let port = u64::from(port);
            if ports.is_none_or(|(from, to)| from <= port && port <= to) {
                problems.push(format!(
                    "{}: {what} opens port {port} to the whole internet",
                    stack.name
                ));
            }
        }
    };

    for resource in stack.resources() {
        let body = resource.body;
        match resource.kind {
            "aws_security_group" => {
                for (i, rule) in body.get_blocks("ingress").enumerate() {
                    let sources = [
                        attr(&rule.body, "cidr_blocks"),
                        attr(&rule.body, "ipv6_cidr_blocks"),
                    ];
                    if sources.into_iter().flatten().any(|s| is_world(stack, s)) {
                        flag(
                            format!("ingress block {i} of {}", resource.address()),
                            aws_ports(&rule.body, "protocol"),
                        );
                    }
                }
            }
            "aws_security_group_rule" => {
                let ingress = attr(body, "type").and_then(as_str) != Some("egress");
                let sources = [attr(body, "cidr_blocks"), attr(body, "ipv6_cidr_blocks")];
                if ingress && sources.into_iter().flatten().any(|s| is_world(stack, s)) {
                    flag(resource.address(), aws_ports(body, "protocol"));
                }
            }
            "aws_vpc_security_group_ingress_rule" => {
                let sources = [attr(body, "cidr_ipv4"), attr(body, "cidr_ipv6")];
                if sources.into_iter().flatten().any(|s| is_world(stack, s)) {
                    flag(resource.address(), aws_ports(body, "ip_protocol"));
                }
            }
            "azurerm_network_security_group" => {
                for rule in body.get_blocks("security_rule") {
                    let name = attr(&rule.body, "name")
                        .and_then(as_str)
                        .unwrap_or("?")
                        .to_owned();
                    for ports in azure_open_ports(stack, &rule.body).unwrap_or_default() {
                        flag(
                            format!("security_rule \"{name}\" of {}", resource.address()),
                            ports,
                        );
                    }
                }
            }
            "azurerm_network_security_rule" => {
                for ports in azure_open_ports(stack, body).unwrap_or_default() {
                    flag(resource.address(), ports);
                }
            }
            _ => {}
        }
    }
    problems
}

/// The port range of an AWS rule; `None` means "any port, or not known here".
fn aws_ports(body: &Body, protocol_key: &str) -> Option<(u64, u64)> {
    let protocol = attr(body, protocol_key).and_then(as_str);
    if matches!(protocol, Some("-1" | "all")) {
        return None;
    }
    Some((
        attr(body, "from_port").and_then(as_u64)?,
        attr(body, "to_port").and_then(as_u64)?,
    ))
}

/// For an inbound Allow rule from the whole internet, the port ranges it opens (`None`
/// for a range that means any port or is not known here); `None` for any other rule.
fn azure_open_ports(stack: &Stack, rule: &Body) -> Option<Vec<Option<(u64, u64)>>> {
    let inbound = attr(rule, "direction")
        .and_then(as_str)
        .is_none_or(|d| d.eq_ignore_ascii_case("inbound"));
    let allow = attr(rule, "access")
        .and_then(as_str)
        .is_none_or(|a| a.eq_ignore_ascii_case("allow"));
    let sources = [
        attr(rule, "source_address_prefix"),
        attr(rule, "source_address_prefixes"),
    ];
    if !(inbound && allow && sources.into_iter().flatten().any(|s| is_world(stack, s))) {
        return None;
    }
    let mut ranges = Vec::new();
    if let Some(range) = attr(rule, "destination_port_range") {
        ranges.push(as_str(range).and_then(parse_port_range));
    }
    match attr(rule, "destination_port_ranges") {
        Some(Expression::Array(items)) => {
            ranges.extend(items.iter().map(|r| as_str(r).and_then(parse_port_range)))
        }
        Some(_) => ranges.push(None),
        None => {}
    }
    if ranges.is_empty() {
        ranges.push(None);
    }
    Some(ranges)
}

/// `"22"`, `"20-30"` or `"*"` (any port: `(0, 65535)`).
fn parse_port_range(range: &str) -> Option<(u64, u64)> {
    if range == "*" {
        return Some((0, 65535));
    }
    match range.split_once('-') {
        Some((from, to)) => Some((from.trim().parse().ok()?, to.trim().parse().ok()?)),
        None => {
            let port = range.trim().parse().ok()?;
            Some((port, port))
        }
    }
}

/// Whether a source address expression may mean the whole internet: a literal
/// `0.0.0.0/0`, `::/0`, `*`, `Internet` or `Any`, a list holding one, or a variable or
/// local whose default or value is one.
pub fn is_world(stack: &Stack, expr: &Expression) -> bool {
    match expr {
        Expression::String(_) => as_str(expr).is_some_and(is_world_literal),
        Expression::Array(items) => items.iter().any(|item| is_world(stack, item)),
        Expression::StringTemplate(_) => {
            ["0.0.0.0/0", "::/0"].iter().any(|w| text(expr).contains(w))
        }
        Expression::Traversal(_) => {
            let path = text(expr);
            if let Some(name) = path.strip_prefix("var.") {
                stack
                    .variable(name)
                    .and_then(|body| attr(body, "default"))
                    .is_some_and(|default| is_world(stack, default))
            } else if let Some(name) = path.strip_prefix("local.") {
                stack
                    .local(name)
                    .is_some_and(|value| is_world(stack, value))
            } else {
                false
            }
        }
        _ => false,
    }
}

fn is_world_literal(source: &str) -> bool {
    let source = source.trim();
    ["0.0.0.0/0", "::/0", "*", "0.0.0.0"].contains(&source)
        || source.eq_ignore_ascii_case("internet")
        || source.eq_ignore_ascii_case("any")
}

/// Variables named `allowed_ssh_cidr` must be required (no default to fall back on) and
/// validated against `0.0.0.0/0`.
pub fn unguarded_ssh_cidr(stack: &Stack) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, body) in stack.variables() {
        if name != "allowed_ssh_cidr" {
            continue;
        }
        if attr(body, "default").is_some() {
            problems.push(format!(
                "{}: variable \"{name}\" has a default; it must be given for every run",
                stack.name
            ));
        }
        let guarded = body
            .get_blocks("validation")
            .filter_map(|v| attr(&v.body, "condition"))
            .any(|c| text(c).contains("0.0.0.0/0"));
        if !guarded {
            problems.push(format!(
                "{}: variable \"{name}\" has no validation rejecting 0.0.0.0/0",
                stack.name
            ));
        }
    }
    problems
}

/// Every S3 bucket has a public access block with all four settings true, ACLs disabled
/// (BucketOwnerEnforced), and no ACL granting anything.
pub fn public_buckets(stack: &Stack) -> Vec<String> {
    let mut problems = Vec::new();
    let refers_to = |body: &Body, bucket: &str| {
        attr(body, "bucket").is_some_and(|b| {
            let t = text(b);
            t == format!("aws_s3_bucket.{bucket}.id")
                || t == format!("aws_s3_bucket.{bucket}.bucket")
        })
    };
    for bucket in stack.resources_of("aws_s3_bucket") {
        let name = bucket.name;
        if attr(bucket.body, "acl").is_some() {
            problems.push(format!("{}: {} sets an acl", stack.name, bucket.address()));
        }
        let blocks = stack.resources_of("aws_s3_bucket_public_access_block");
        match blocks.iter().find(|b| refers_to(b.body, name)) {
            None => problems.push(format!(
                "{}: {} has no aws_s3_bucket_public_access_block",
                stack.name,
                bucket.address()
            )),
            Some(block) => {
                for key in [
                    "block_public_acls",
                    "block_public_policy",
                    "ignore_public_acls",
                    "restrict_public_buckets",
                ] {
                    if attr(block.body, key).and_then(as_bool) != Some(true) {
                        problems.push(format!(
                            "{}: {} does not set {key} = true",
                            stack.name,
                            block.address()
                        ));
                    }
                }
            }
        }
        let enforced = stack
            .resources_of("aws_s3_bucket_ownership_controls")
            .iter()
            .any(|c| {
                refers_to(c.body, name)
                    && c.body
                        .get_blocks("rule")
                        .filter_map(|r| attr(&r.body, "object_ownership").and_then(as_str))
                        .any(|o| o == "BucketOwnerEnforced")
            });
        if !enforced {
            problems.push(format!(
                "{}: {} has no ownership controls with object_ownership = \"BucketOwnerEnforced\" (ACLs stay enabled)",
                stack.name,
                bucket.address()
            ));
        }
    }
    for acl in stack.resources_of("aws_s3_bucket_acl") {
        problems.push(format!(
            "{}: {} grants an ACL; access goes through IAM and presigned URLs only",
            stack.name,
            acl.address()
        ));
    }
    problems
}

/// Every AWS instance terminates when it powers itself off, so a finished runner stops
/// costing money.
pub fn instances_not_terminating(stack: &Stack) -> Vec<String> {
    stack
        .resources_of("aws_instance")
        .iter()
        .filter(|i| {
            attr(i.body, "instance_initiated_shutdown_behavior").and_then(as_str)
                != Some("terminate")
        })
        .map(|i| {
            format!(
                "{}: {} lacks instance_initiated_shutdown_behavior = \"terminate\"",
                stack.name,
                i.address()
            )
        })
        .collect()
}

/// Providers in `required_providers` without a version constraint.
pub fn unpinned_providers(stack: &Stack) -> Vec<String> {
    let mut problems = Vec::new();
    let mut found = false;
    for terraform in stack.blocks("terraform") {
        for required in terraform.body.get_blocks("required_providers") {
            for provider in required.body.attributes() {
                found = true;
                let pinned = match &provider.value {
                    Expression::Object(object) => object.iter().any(|(k, v)| {
                        matches!(k, hcl::edit::expr::ObjectKey::Ident(i) if i.as_str() == "version")
                            && as_str(v.expr()).is_some_and(|s| !s.trim().is_empty())
                    }),
                    _ => false,
                };
                if !pinned {
                    problems.push(format!(
                        "{}: provider {} has no version constraint",
                        stack.name,
                        provider.key.as_str()
                    ));
                }
            }
        }
    }
    if !found {
        problems.push(format!(
            "{}: no terraform {{ required_providers {{ ... }} }}",
            stack.name
        ));
    }
    problems
}

/// The environment variable names a local sets for a container: the keys of an object,
/// or of the object each element of a `for` expression yields.
pub fn env_keys(stack: &Stack, local: &str) -> Option<BTreeSet<String>> {
    let mut expr = stack.local(local)?;
    if let Expression::ForExpr(for_expr) = expr {
        expr = &for_expr.value_expr;
    }
    object_keys(expr).map(|keys| keys.into_iter().collect())
}

/// Azure role assignments: each gives a role defined in the stack (built-in roles are all
/// far wider: Virtual Machine Contributor includes run-command), on one VM; each role
/// definition grants only [`AZURE_ROLE_ACTIONS`] and no data actions.
pub fn broad_azure_roles(stack: &Stack) -> Vec<String> {
    let mut problems = Vec::new();
    for assignment in stack.resources_of("azurerm_role_assignment") {
        let address = assignment.address();
        if let Some(name) = attr(assignment.body, "role_definition_name") {
            problems.push(format!(
                "{}: {address} assigns the built-in role {}; define a role with only the actions it needs",
                stack.name,
                text(name)
            ));
        }
        match attr(assignment.body, "role_definition_id").map(text) {
            Some(id) if id.starts_with("azurerm_role_definition.") => {}
            other => problems.push(format!(
                "{}: {address} gives {}, not a role defined in the stack",
                stack.name,
                other.unwrap_or_else(|| "no role_definition_id".to_owned())
            )),
        }
        let scope = attr(assignment.body, "scope").map(text).unwrap_or_default();
        if !(scope.starts_with("azurerm_linux_virtual_machine.") && scope.ends_with(".id")) {
            problems.push(format!(
                "{}: {address} is scoped to {scope:?}, not to one VM",
                stack.name
            ));
        }
    }
    for role in stack.resources_of("azurerm_role_definition") {
        let address = role.address();
        let permissions: Vec<_> = role.body.get_blocks("permissions").collect();
        if permissions.is_empty() {
            problems.push(format!(
                "{}: {address} has no permissions block",
                stack.name
            ));
        }
        for block in permissions {
            let actions: Option<Vec<String>> = match attr(&block.body, "actions") {
                Some(Expression::Array(items)) => {
                    items.iter().map(|a| as_str(a).map(str::to_owned)).collect()
                }
                _ => None,
            };
            match actions {
                Some(actions) => {
                    for action in actions
                        .iter()
                        .filter(|a: &&String| !AZURE_ROLE_ACTIONS.contains(&a.as_str()))
                    {
                        problems.push(format!(
                            "{}: {address} grants {action}; a run's role may grant only {}",
                            stack.name,
                            AZURE_ROLE_ACTIONS.join(", ")
                        ));
                    }
                }
                None => problems.push(format!(
                    "{}: {address} has actions that are not a list of literal strings",
                    stack.name
                )),
            }
            let data_actions = match attr(&block.body, "data_actions") {
                Some(Expression::Array(items)) => !items.is_empty(),
                Some(_) => true,
                None => false,
            };
            if data_actions {
                problems.push(format!("{}: {address} grants data actions", stack.name));
            }
        }
    }
    problems
}
