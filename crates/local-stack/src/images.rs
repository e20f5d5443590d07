//! Image names and labels, read from the same description `cargo xtask images` builds.

use std::sync::LazyLock;

use serde::Deserialize;

/// The image description, compiled in so tests and xtask cannot disagree.
const DESCRIPTION: &str = include_str!("../../../xtask/images/images.toml");

/// What the harness needs of the image description.
#[derive(Debug, Deserialize)]
pub struct ImageCatalog {
    /// Repository prefix of every image, e.g. `rcb`.
    pub prefix: String,
    /// Key of the label every project resource carries.
    pub label: String,
    /// Value of that label.
    pub project: String,
}

impl ImageCatalog {
    /// The full reference of one of the project's images.
    pub fn reference(&self, name: &str, tag: &str) -> String {
        format!("{}/{name}:{tag}", self.prefix)
    }
}

/// The project's image catalog.
pub fn catalog() -> &'static ImageCatalog {
    static CATALOG: LazyLock<ImageCatalog> =
        LazyLock::new(|| toml::from_str(DESCRIPTION).expect("xtask/images/images.toml is valid"));
    &CATALOG
}
