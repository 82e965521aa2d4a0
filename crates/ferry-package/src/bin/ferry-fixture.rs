//! Writes a deterministic fixture package.
//!
//! `ferry-fixture OUT.zip [--tasks N] [--tables N] [--resources N]
//! [--functions N] [--rules N] [--apis N] [--layers N] [--code-bytes N]
//! [--seed N] [--project NAME] [--size BYTES]`
//!
//! `--size` picks the object counts for a package of about that many bytes.

use std::process::ExitCode;

use ferry_package::fixtures::FixtureSpec;

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry-fixture: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut spec = FixtureSpec::new();
    let mut out = None;
    let mut size = None;
    let mut seed = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if !a.starts_with("--") {
            out = Some(a);
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        let n = || {
            v.parse::<usize>()
                .map_err(|_| format!("{a}: {v:?} is not a number"))
        };
        spec = match a.as_str() {
            "--tasks" => spec.tasks(n()?),
            "--tables" => spec.tables(n()?),
            "--resources" => spec.file_resources(n()?),
            "--functions" => spec.functions(n()?),
            "--rules" => spec.quality_rules(n()?),
            "--apis" => spec.service_apis(n()?),
            "--layers" => spec.layers(n()?),
            "--code-bytes" => spec.code_bytes(n()?),
            "--seed" => {
                seed = Some(n()? as u64);
                spec.seed(n()? as u64)
            }
            "--project" => spec.project(v.clone()),
            "--size" => {
                size = Some(n()? as u64);
                spec
            }
            _ => return Err(format!("unknown option {a}")),
        };
    }
    let out = out.ok_or("usage: ferry-fixture OUT.zip [--tasks N] ... [--size BYTES]")?;
    if let Some(size) = size {
        spec = FixtureSpec::sized(size, seed.unwrap_or(spec.seed));
    }
    let file = std::fs::File::create(&out).map_err(|e| format!("{out}: {e}"))?;
    let (_, manifest) = spec.write_to(file).map_err(|e| e.to_string())?;
    let len = std::fs::metadata(&out).map_err(|e| e.to_string())?.len();
    println!("{out}: {} objects, {len} bytes", manifest.objects.len());
    Ok(())
}
