# The images of xtask/images/images.toml that Nix builds (those with a workspace binary),
# as plain data: no nixpkgs needed, so `cargo xtask test` can evaluate this file on a
# machine without any Nix channel and check it agrees with what `cargo xtask images` builds.
let
  description = builtins.fromTOML (builtins.readFile ../xtask/images/images.toml);
  withBinary = builtins.filter (image: image ? binary) description.image;
  config = image: {
    name = "${description.prefix}/${image.name}";
    tag = image.tag;
    binary = image.binary;
    # Debian package names of the image's root file system; nix/images.nix maps them.
    packages = description.rootfs.${image.rootfs}.packages;
    config = {
      Entrypoint = image.entrypoint or [ ];
      Cmd = image.cmd or [ ];
      Env = map (key: "${key}=${image.env.${key}}") (builtins.attrNames (image.env or { }));
      ExposedPorts = builtins.listToAttrs (map (port: {
        name = "${toString port}/tcp";
        value = { };
      }) (image.ports or [ ]));
      Labels = {
        ${description.label} = description.project;
        "rcb.image" = image.name;
      };
      StopSignal = image.stop_signal or "SIGTERM";
    };
  };
in
builtins.listToAttrs (map (image: {
  name = image.name;
  value = config image;
}) withBinary)
