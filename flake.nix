{
  description = "Ruby Cross Cloud Benchmark: which cloud machine runs Ruby fastest and cheapest";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";
    rust-overlay = {
      url = "github:oxalica/rust-overlay";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs = { self, nixpkgs, rust-overlay }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system:
        f (import nixpkgs {
          inherit system;
          overlays = [ rust-overlay.overlays.default ];
          # Terraform is under the BSL; nixpkgs marks it unfree.
          config.allowUnfreePredicate = pkg: builtins.elem (nixpkgs.lib.getName pkg) [ "terraform" ];
        }));
      # The toolchain the project is built and tested with (see Cargo.toml rust-version).
      toolchainFor = pkgs: pkgs.rust-bin.stable."1.95.0".default.override {
        extensions = [ "rustfmt" "clippy" "rust-src" ];
      };
      workspaceFor = pkgs:
        let toolchain = toolchainFor pkgs;
        in pkgs.callPackage ./nix/workspace.nix {
          rustPlatform = pkgs.makeRustPlatform { cargo = toolchain; rustc = toolchain; };
        };
    in
    {
      packages = forAllSystems (pkgs:
        let
          workspace = workspaceFor pkgs;
          images = import ./nix/images.nix { inherit pkgs workspace; };
        in
        {
          default = workspace;
          inherit workspace;
        }
        # orchestrator-image, runner-image, s3-local-image: one per binary image of the description.
        // nixpkgs.lib.mapAttrs' (name: image: nixpkgs.lib.nameValuePair "${name}-image" image) images);

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            (toolchainFor pkgs)
            pkgs.sqlx-cli
            pkgs.fish
            pkgs.jq
            pkgs.curl
            pkgs.terraform
            pkgs.awscli2
            pkgs.azure-cli
            pkgs.docker-client
            pkgs.chromium
            pkgs.chromedriver
            pkgs.debootstrap
            pkgs.ruby
            pkgs.pkg-config
          ];
          # The README's commands share one build with CI.
          shellHook = ''
            export CARGO_TARGET_DIR="''${CARGO_TARGET_DIR:-$HOME/.cache/rcb/target}"
          '';
        };
      });

      # What runs without Docker: unit tests and clippy.
      checks = forAllSystems (pkgs:
        let workspace = workspaceFor pkgs;
        in {
          unit-tests = workspace.overrideAttrs (_: {
            pname = "ruby-cross-cloud-bench-unit-tests";
            doCheck = true;
            cargoTestFlags = [ "--workspace" "--lib" ];
          });
          clippy = workspace.overrideAttrs (old: {
            pname = "ruby-cross-cloud-bench-clippy";
            buildPhase = ''
              runHook preBuild
              cargo clippy --workspace --all-targets --offline -- -D warnings
              runHook postBuild
            '';
            installPhase = "touch $out";
            doCheck = false;
          });
        });

      formatter = forAllSystems (pkgs: pkgs.nixpkgs-fmt);
    };
}
