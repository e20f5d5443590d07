//! A Terraform stack (one directory of `.tf` files) parsed with hcl-edit, and the
//! references its expressions make.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hcl::edit::expr::{Expression, Traversal, TraversalOperator};
use hcl::edit::structure::{Attribute, Block, Body};
use hcl::edit::visit::{self, Visit};

/// The stacks under `terraform/`, in the order the master script applies them.
pub const STACKS: [&str; 3] = ["meta", "aws", "azure"];

/// Provider prefixes of the resource types the stacks use; a traversal rooted at such a
/// name refers to a resource.
pub const RESOURCE_PREFIXES: [&str; 6] = [
    "aws_",
    "azurerm_",
    "random_",
    "tls_",
    "local_",
    "terraform_",
];

/// The repository's `terraform/` directory.
pub fn terraform_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../terraform")
}

/// One parsed `.tf` file.
pub struct TfFile {
    /// Where it was read from (or a name for a snippet).
    pub path: PathBuf,
    /// Its parsed body.
    pub body: Body,
}

/// A stack: the `.tf` files of one directory, as Terraform reads them together.
pub struct Stack {
    /// The directory's name (`meta`, `aws`, `azure`) or a snippet's name.
    pub name: String,
    /// The directory, against which `path.module` resolves.
    pub dir: PathBuf,
    /// Its files, sorted by name.
    pub files: Vec<TfFile>,
}

/// A `resource` or `data` block.
pub struct Resource<'a> {
    /// The resource type, e.g. `aws_instance`.
    pub kind: &'a str,
    /// The resource name, e.g. `runner`.
    pub name: &'a str,
    /// The block's body.
    pub body: &'a Body,
}

impl Resource<'_> {
    /// `type.name`, as problems name it.
    pub fn address(&self) -> String {
        format!("{}.{}", self.kind, self.name)
    }
}

impl Stack {
    /// Reads and parses every `.tf` file of `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Stack> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("failed to list {}", dir.display()))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        paths.retain(|p| p.extension().is_some_and(|e| e == "tf"));
        paths.sort();
        let mut files = Vec::new();
        for path in paths {
            let source = std::fs::read_to_string(&path)
                .with_context(|| format!("failed to read {}", path.display()))?;
            let body = hcl::edit::parser::parse_body(&source)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            files.push(TfFile { path, body });
        }
        anyhow::ensure!(!files.is_empty(), "{} holds no .tf file", dir.display());
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(Stack {
            name,
            dir: dir.to_path_buf(),
            files,
        })
    }

    /// Loads `terraform/<name>`.
    pub fn load_named(name: &str) -> anyhow::Result<Stack> {
        Stack::load(&terraform_root().join(name))
    }

    /// Parses one snippet of HCL as a stack of its own (for tests of the checks).
    pub fn from_source(name: &str, source: &str) -> anyhow::Result<Stack> {
        let body =
            hcl::edit::parser::parse_body(source).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        Ok(Stack {
            name: name.to_owned(),
            dir: terraform_root(),
            files: vec![TfFile {
                path: PathBuf::from(format!("{name}.tf")),
                body,
            }],
        })
    }

    /// Every top-level block with this identifier, across files.
    pub fn blocks<'a>(&'a self, ident: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
        self.files
            .iter()
            .flat_map(move |f| f.body.get_blocks(ident))
    }

    /// Every `resource` block.
    pub fn resources(&self) -> Vec<Resource<'_>> {
        self.labelled("resource")
    }

    /// Every `data` block.
    pub fn data_sources(&self) -> Vec<Resource<'_>> {
        self.labelled("data")
    }

    fn labelled<'a>(&'a self, ident: &'a str) -> Vec<Resource<'a>> {
        self.blocks(ident)
            .filter_map(|b| match b.labels.as_slice() {
                [kind, name] => Some(Resource {
                    kind: kind.as_str(),
                    name: name.as_str(),
                    body: &b.body,
                }),
                _ => None,
            })
            .collect()
    }

    /// The resources of one type.
    pub fn resources_of<'a>(&'a self, kind: &str) -> Vec<Resource<'a>> {
        self.resources()
            .into_iter()
            .filter(|r| r.kind == kind)
            .collect()
    }

    /// The `variable` blocks, by name.
    pub fn variables(&self) -> Vec<(&str, &Body)> {
        self.named("variable")
    }

    /// The `output` blocks, by name.
    pub fn outputs(&self) -> Vec<(&str, &Body)> {
        self.named("output")
    }

    fn named<'a>(&'a self, ident: &'a str) -> Vec<(&'a str, &'a Body)> {
        self.blocks(ident)
            .filter_map(|b| b.labels.first().map(|l| (l.as_str(), &b.body)))
            .collect()
    }

    /// A variable's body.
    pub fn variable(&self, name: &str) -> Option<&Body> {
        self.variables()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b)
    }

    /// Every attribute of every `locals` block.
    pub fn locals(&self) -> Vec<&Attribute> {
        self.blocks("locals")
            .flat_map(|b| b.body.attributes())
            .collect()
    }

    /// The expression of one local value.
    pub fn local(&self, name: &str) -> Option<&Expression> {
        self.locals()
            .into_iter()
            .find(|a| a.key.as_str() == name)
            .map(|a| &a.value)
    }

    /// Every reference made anywhere in the stack's expressions.
    pub fn references(&self) -> References {
        let mut refs = References::default();
        for file in &self.files {
            refs.visit_body(&file.body);
        }
        refs
    }
}

/// The references found in expressions: each is the traversal's root followed by its
/// leading attribute names (`var.region` is `["var", "region"]`).
#[derive(Default)]
pub struct References {
    /// Root name and leading attribute names of every traversal.
    pub paths: BTreeSet<Vec<String>>,
    /// Every bare variable, including traversal roots (template variables are these).
    pub roots: BTreeSet<String>,
}

impl References {
    /// Names `x` of every `<root>.x`.
    pub fn under(&self, root: &str) -> BTreeSet<String> {
        self.paths
            .iter()
            .filter(|p| p.len() >= 2 && p[0] == root)
            .map(|p| p[1].clone())
            .collect()
    }
}

impl Visit for References {
    fn visit_traversal(&mut self, node: &Traversal) {
        if let Expression::Variable(root) = &node.expr {
            let mut path = vec![root.as_str().to_owned()];
            for op in &node.operators {
                match op.value() {
                    TraversalOperator::GetAttr(name) => path.push(name.as_str().to_owned()),
                    _ => break,
                }
            }
            self.paths.insert(path);
        }
        visit::visit_traversal(self, node);
    }

    fn visit_expr(&mut self, node: &Expression) {
        if let Expression::Variable(name) = node {
            self.roots.insert(name.as_str().to_owned());
        }
        visit::visit_expr(self, node);
    }
}

/// The value of an attribute of a body.
pub fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.get_attribute(key).map(|a| &a.value)
}

/// A string literal's value.
pub fn as_str(expr: &Expression) -> Option<&str> {
    match expr {
        Expression::String(s) => Some(s.value().as_str()),
        _ => None,
    }
}

/// A boolean literal's value.
pub fn as_bool(expr: &Expression) -> Option<bool> {
    match expr {
        Expression::Bool(b) => Some(*b.value()),
        _ => None,
    }
}

/// An integer literal's value.
pub fn as_u64(expr: &Expression) -> Option<u64> {
    match expr {
        Expression::Number(n) => n.value().as_u64(),
        _ => None,
    }
}

/// The source text of an expression, without surrounding whitespace.
pub fn text(expr: &Expression) -> String {
    expr.to_string().trim().to_owned()
}

/// The keys of an object expression (identifiers or string literals).
pub fn object_keys(expr: &Expression) -> Option<Vec<String>> {
    let Expression::Object(object) = expr else {
        return None;
    };
    Some(
        object
            .iter()
            .filter_map(|(key, _)| match key {
                hcl::edit::expr::ObjectKey::Ident(ident) => Some(ident.as_str().to_owned()),
                hcl::edit::expr::ObjectKey::Expression(e) => as_str(e).map(str::to_owned),
            })
            .collect(),
    )
}
