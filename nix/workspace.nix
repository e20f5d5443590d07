# Every binary of the cargo workspace (orchestrator, runner, s3-local, site, xtask).
{ lib, rustPlatform, pkg-config, fetchurl }:
rustPlatform.buildRustPackage {
  pname = "ruby-cross-cloud-bench";
  version = "0.1.0";
  src = lib.cleanSourceWith {
    src = ../.;
    filter = path: type:
      let base = baseNameOf path;
      in !(builtins.elem base [ "target" "results" "public" ".git" "result" ]);
  };
  cargoLock.lockFile = ../Cargo.lock;
  nativeBuildInputs = [ pkg-config ];
  # The orchestrator's build.rs embeds turbo.js from this tarball (the sandbox has no network;
  # the hash is the npm integrity that build.rs checks as well).
  TURBO_TARBALL = fetchurl {
    url = "https://registry.npmjs.org/@hotwired/turbo/-/turbo-8.0.23.tgz";
    hash = "sha512-GZ7cijxEZ6Ig71u7rD6LHaRv/wcE/hNsc+nEfiWOkLNqUgLOwo5MNGWOy5ZV9ZUDSiQx1no7YxjTNnT4O6//cQ==";
  };
  # The integration tests need Docker, which the Nix sandbox has not; `checks` runs the
  # unit tests and clippy.
  doCheck = false;
  meta.description = "Ruby Cross Cloud Benchmark: orchestrator, runner, s3-local, site";
}
