# Every binary of the cargo workspace (orchestrator, runner, s3-local, site, xtask).
{ lib, rustPlatform, pkg-config }:
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
  # The integration tests need Docker, which the Nix sandbox has not; `checks` runs the
  # unit tests and clippy.
  doCheck = false;
  meta.description = "Ruby Cross Cloud Benchmark: orchestrator, runner, s3-local, site";
}
