# Layered images of the workspace binaries, from the same description as
# `cargo xtask images` (see image-configs.nix).
{ pkgs, workspace }:
let
  # Debian package names used in xtask/images/images.toml, and what Nix puts in their place.
  debianToNix = {
    "ca-certificates" = [ pkgs.cacert ];
    git = [ pkgs.git ];
    ruby = [ pkgs.ruby ];
    "postgresql-15" = [ pkgs.postgresql_15 ];
  };
  contentsFor = packages: builtins.concatLists (map (name: debianToNix.${name}) packages);
  build = spec:
    pkgs.dockerTools.buildLayeredImage {
      inherit (spec) name tag;
      contents = [ pkgs.bashInteractive pkgs.coreutils ] ++ contentsFor spec.packages;
      extraCommands = ''
        mkdir -p usr/local/bin tmp
        chmod 1777 tmp
        ln -s ${workspace}/bin/${spec.binary} usr/local/bin/${spec.binary}
      '';
      config = spec.config // {
        Env = spec.config.Env ++ [ "SSL_CERT_FILE=${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt" ];
      };
    };
in
builtins.mapAttrs (_: build) (import ./image-configs.nix)
