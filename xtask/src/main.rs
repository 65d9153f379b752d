//! `cargo xtask`: builds carport's Wasm components and the host, runs the demo and the tests.
//!
//! Guests need a wasm32 standard library. Where rustup has the `wasm32-unknown-unknown` target
//! we use it; otherwise we use Debian's `rustc-web` toolchain, which ships the standard
//! library's source, and build std ourselves (`-Zbuild-std`). Missing Debian packages are
//! installed with apt-get; nothing is downloaded from anywhere else.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// Guest crates and the component file each one becomes.
const GUESTS: &[&str] = &[
    "tessie",
    "tesla",
    "teslamate",
    "smartcar",
    "dimo",
    "hostile",
    "conformance",
];
const DEBIAN_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "rust-web-llvm",
    "lld-22",
];
/// Components written in Python: (folder under plugins/, module holding the provider).
const PYTHON_GUESTS: &[(&str, &str)] = &[("nhtsa", "app")];
/// componentize-py, from PyPI into a venv under target/, pinned: its output embeds CPython.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
const WIT_WORLD: &str = "carport:provider/plugin@0.2.0";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";

const USAGE: &str = "usage: cargo xtask <command>

commands:
  components        build every plugin component into target/components/
  build [--release] build the components and the carport binary
  demo              build, then run `carport demo` (MCP over stdio, built-in simulator)
  test              build the components, then run the whole test suite
  bench             build the components, then run the latency benchmark (release)";

fn main() -> ExitCode {
    match run(env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let root = workspace_root();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["components"] => build_components(&root),
        ["build"] => {
            build_components(&root)?;
            cargo_host(&root, &["build", "--package", "carport"])
        }
        ["build", "--release"] => {
            build_components(&root)?;
            cargo_host(&root, &["build", "--release", "--package", "carport"])
        }
        ["demo", rest @ ..] => {
            build_components(&root)?;
            let mut command = vec!["run", "--quiet", "--package", "carport", "--", "demo"];
            command.extend_from_slice(rest);
            cargo_host(&root, &command)
        }
        ["test", rest @ ..] => {
            build_components(&root)?;
            ensure_npm()?;
            ensure_chromium()?;
            // Plugin crates are cdylibs: their unit tests run natively as library tests only.
            cargo_host(
                &root,
                &[
                    "test",
                    "--lib",
                    "--package",
                    "tesla",
                    "--package",
                    "smartcar",
                    "--package",
                    "teslamate",
                    "--package",
                    "dimo",
                ],
            )?;
            let mut command = vec![
                "test",
                "--package",
                "carport",
                "--package",
                "carport-guest",
                "--package",
                "xtask",
                "--package",
                "carport-simulator",
                "--package",
                "tesla-protocol",
            ];
            command.extend_from_slice(rest);
            cargo_host(&root, &command)
        }
        ["bench"] => {
            build_components(&root)?;
            cargo_host(
                &root,
                &["bench", "--package", "carport", "--bench", "latency"],
            )
        }
        _ => bail!("{USAGE}"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo_host(root: &Path, args: &[&str]) -> Result<()> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .current_dir(root)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// How guests get a wasm32 standard library on this machine.
enum GuestToolchain {
    /// rustup's cargo with the prebuilt wasm32 target.
    Rustup { cargo: String },
    /// Debian's rustc-web with std built from source.
    DebianBuildStd,
}

fn detect_toolchain() -> Result<GuestToolchain> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string());
    if let Some(sysroot) = sysroot
        && Path::new(&sysroot)
            .join("lib/rustlib")
            .join(WASM_TARGET)
            .join("lib")
            .is_dir()
    {
        let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        return Ok(GuestToolchain::Rustup { cargo });
    }
    if !debian_toolchain_present() {
        install_debian_toolchain()?;
    }
    Ok(GuestToolchain::DebianBuildStd)
}

fn debian_toolchain_present() -> bool {
    let Ok(output) = Command::new(DEBIAN_RUSTC)
        .args(["--print", "sysroot"])
        .output()
    else {
        return false;
    };
    let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    // rust-lld is a link into lld-22: `exists` follows it, so a missing lld-22 shows here.
    Path::new(DEBIAN_CARGO).exists()
        && sysroot.join("lib/rustlib/src/rust/library/std").is_dir()
        && Path::new("/usr/bin/rust-lld").exists()
}

/// The MCP conformance suite in the tests is installed with npm from the npm registry.
fn ensure_npm() -> Result<()> {
    if Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
    {
        return Ok(());
    }
    eprintln!(
        "xtask: npm is missing (the MCP conformance suite needs it); installing Debian's npm"
    );
    install_debian_packages(&["npm"])
}

/// The sign-in tests click through the simulated sign-in pages in a real headless Chromium.
fn ensure_chromium() -> Result<()> {
    if Command::new("chromium")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
    {
        return Ok(());
    }
    eprintln!(
        "xtask: chromium is missing (the sign-in tests drive it headless); installing Debian's \
         chromium"
    );
    install_debian_packages(&["chromium"])
}

fn install_debian_toolchain() -> Result<()> {
    eprintln!(
        "xtask: no wasm32 target in rustup and no Debian rustc-web toolchain; installing {} with apt-get",
        DEBIAN_PACKAGES.join(" ")
    );
    install_debian_packages(DEBIAN_PACKAGES).context(
        "run `rustup target add wasm32-unknown-unknown` instead, or install those packages as root",
    )
}

fn install_debian_packages(packages: &[&str]) -> Result<()> {
    let apt = |args: &[&str]| -> Result<bool> {
        let mut command = Command::new("apt-get");
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        let status = command
            .status()
            .context("apt-get is not available to install what is missing")?;
        Ok(status.success())
    };
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend_from_slice(packages);
    if apt(&install)? {
        return Ok(());
    }
    // A fresh machine has no package lists yet.
    if apt(&["update"])? && apt(&install)? {
        return Ok(());
    }
    bail!("could not install {} with apt-get", packages.join(" "))
}

fn build_components(root: &Path) -> Result<()> {
    let toolchain = detect_toolchain()?;
    let mut command = match &toolchain {
        GuestToolchain::Rustup { cargo } => Command::new(cargo),
        GuestToolchain::DebianBuildStd => {
            let mut command = Command::new(DEBIAN_CARGO);
            command
                .env("RUSTC", DEBIAN_RUSTC)
                .env("RUSTC_BOOTSTRAP", "1");
            command
        }
    };
    // Variables that the outer (rustup) cargo set for this process must not leak into the guest
    // build, or it would pick the wrong compiler.
    for variable in [
        "RUSTUP_TOOLCHAIN",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_ENCODED_RUSTFLAGS",
    ] {
        command.env_remove(variable);
    }
    command
        .current_dir(root)
        .args(["build", "--profile", "plugin", "--target", WASM_TARGET]);
    if matches!(toolchain, GuestToolchain::DebianBuildStd) {
        command.args(["-Zbuild-std=std,panic_abort"]);
    }
    for guest in GUESTS {
        command.args(["--package", guest]);
    }
    let status = command.status().context("running the guest build")?;
    if !status.success() {
        bail!("building the plugin crates for {WASM_TARGET} failed ({status})");
    }

    let core_dir = root.join("target").join(WASM_TARGET).join("plugin");
    let out_dir = root.join("target/components");
    fs::create_dir_all(&out_dir)?;
    for guest in GUESTS {
        let core_path = core_dir.join(format!("{guest}.wasm"));
        let core = fs::read(&core_path)
            .with_context(|| format!("reading the core module {}", core_path.display()))?;
        let mut encoder = wit_component::ComponentEncoder::default();
        encoder.validate(true);
        let component = encoder
            .module(&core)
            .and_then(|encoder| encoder.encode())
            .with_context(|| format!("turning {} into a component", core_path.display()))?;
        let out_path = out_dir.join(format!("{guest}.wasm"));
        write_if_changed(&out_path, &component)?;
        eprintln!(
            "xtask: {} ({} KiB)",
            out_path.display(),
            component.len() / 1024
        );
    }
    build_python_components(root, &out_dir)
}

/// Builds each Python guest with componentize-py, unless its component is newer than its
/// sources and the world. Each drop-in's manifest is copied beside its component.
fn build_python_components(root: &Path, out_dir: &Path) -> Result<()> {
    let wit = root.join("wit");
    for (guest, module) in PYTHON_GUESTS {
        let source_dir = root.join("plugins").join(guest);
        let out_path = out_dir.join(format!("{guest}.wasm"));
        let manifest = source_dir.join(format!("{guest}.toml"));
        if manifest.is_file() {
            write_if_changed(
                &out_dir.join(format!("{guest}.toml")),
                &fs::read(&manifest)?,
            )?;
        }
        let sources = [source_dir.clone(), wit.clone()];
        if is_newer_than(&out_path, &sources)? {
            continue;
        }
        let componentize = componentize_py(root)?;
        let temporary = out_path.with_extension("wasm.tmp");
        let started = std::time::Instant::now();
        let status = Command::new(&componentize)
            .current_dir(root)
            .args(["-d", "wit", "-w", WIT_WORLD, "componentize", "-p"])
            .arg(&source_dir)
            .arg(module)
            .arg("-o")
            .arg(&temporary)
            .status()
            .context("running componentize-py")?;
        if !status.success() {
            bail!("componentize-py failed for plugins/{guest} ({status})");
        }
        fs::rename(&temporary, &out_path)?;
        eprintln!(
            "xtask: {} ({} KiB, componentize-py in {:.0?})",
            out_path.display(),
            fs::metadata(&out_path)?.len() / 1024,
            started.elapsed()
        );
    }
    Ok(())
}

/// Whether `output` exists and is newer than every source (`.py`, `.wit`) in the `inputs`
/// folders. componentize-py's output differs at each build (and so does its digest), so an
/// unneeded rebuild would cost every cache a recompile.
fn is_newer_than(output: &Path, inputs: &[PathBuf]) -> Result<bool> {
    let Ok(built) = fs::metadata(output).and_then(|metadata| metadata.modified()) else {
        return Ok(false);
    };
    for folder in inputs {
        for entry in fs::read_dir(folder)? {
            let entry = entry?;
            let source = entry
                .path()
                .extension()
                .is_some_and(|extension| extension == "py" || extension == "wit");
            if source && entry.metadata()?.modified()? > built {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// componentize-py from a venv under target/, installed from PyPI at the pinned version when
/// missing (with Debian's python3-venv when Python cannot make a venv).
fn componentize_py(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target/componentize-py/venv");
    let tool = venv.join("bin/componentize-py");
    let pinned_version = COMPONENTIZE_PY.rsplit("==").next().unwrap_or_default();
    let installed = Command::new(&tool)
        .arg("--version")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains(pinned_version));
    if installed {
        return Ok(tool);
    }
    eprintln!(
        "xtask: installing {COMPONENTIZE_PY} from PyPI into {}",
        venv.display()
    );
    let make_venv = || {
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv)
            .status()
            .is_ok_and(|status| status.success())
    };
    if !make_venv() {
        install_debian_packages(&["python3", "python3-venv", "python3-pip"])?;
        if !make_venv() {
            bail!("python3 cannot create a venv at {}", venv.display());
        }
    }
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", COMPONENTIZE_PY])
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!("pip could not install {COMPONENTIZE_PY}");
    }
    Ok(tool)
}

/// Leaves an unchanged component's file (and mtime) alone; replaces a changed one atomically.
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if fs::read(path).is_ok_and(|existing| existing == bytes) {
        return Ok(());
    }
    let temporary = path.with_extension("wasm.tmp");
    fs::write(&temporary, bytes)?;
    fs::rename(&temporary, path)?;
    Ok(())
}
