//! `llb-bench --scale [--services N] [--depth D]`: planning at scale (issue 14). A generated
//! stack with N flat services (default 1,000) and a chain of D layers each built `from` the
//! previous one (default 200); every 100th service is built on the end of the chain. Reports
//! the time of `llb-gen check` (`llb_gen::check`: parse, stack-wide checks, a plan of every
//! target) and of whole-stack LLB: the file parsed once, then every target planned, converted
//! and encoded, one after another (target: under one second each). One parse of the file (what
//! each build pays once) is reported apart.

use std::time::{Duration, Instant};

use llb_gen::convert::{NoImages, convert};
use llb_gen::plan::BuildOptions;
use llb_gen::source::SourceFile;
use llb_gen::stack::Stack;
use prost::Message;

/// The stack text and its target names (layers of the chain, then services).
pub fn stack(services: usize, depth: usize) -> (String, Vec<String>) {
    let mut s = String::from(
        "# syntax=layerstack:dev\n[stack]\nname = \"scale\"\n\n[args]\nPY = \"3.12\"\n\n\
         [layers.base]\nfrom = \"python:${PY}-slim\"\nenv = { APP_HOME = \"/app\" }\n",
    );
    let mut names = vec!["base".to_string()];
    for d in 0..depth {
        let from = if d == 0 { "base".to_string() } else { format!("c{}", d - 1) };
        s.push_str(&format!(
            "\n[layers.c{d}]\nfrom = \"{from}\"\nenv = {{ LEVEL_{d} = \"{d}\" }}\nrun = [\"echo level {d} > /etc/level\"]\n"
        ));
        names.push(format!("c{d}"));
    }
    for i in 0..services {
        let from = if depth > 0 && i % 100 == 99 {
            format!("c{}", depth - 1)
        } else {
            "base".to_string()
        };
        s.push_str(&format!(
            "\n[services.s{i}]\nfrom = \"{from}\"\ncmd = [\"python3\", \"-m\", \"app{i}\"]\n\
             labels = {{ \"org.opencontainers.image.title\" = \"s{i}\" }}\n"
        ));
        names.push(format!("s{i}"));
    }
    (s, names)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// One target of a parsed stack: plan, convert (+ marshal), encode. Bytes, ops and the time
/// of each phase.
fn one(stack: &Stack, file: &SourceFile, opts: &BuildOptions) -> (usize, usize, [Duration; 3]) {
    let t0 = Instant::now();
    let plan = llb_gen::plan::plan(stack, opts).unwrap_or_else(|d| panic!("{}", d.render(file)));
    let t1 = Instant::now();
    let out = convert(&plan, opts, &NoImages, file).unwrap_or_else(|d| panic!("{}", d.render(file)));
    let t2 = Instant::now();
    let bytes = out.definition.encode_to_vec();
    let t3 = Instant::now();
    (bytes.len(), out.definition.def.len(), [t1 - t0, t2 - t1, t3 - t2])
}

/// Runs the benchmark and prints its figures (JSON with `json`).
pub fn run(services: usize, depth: usize, json: bool) {
    let (text, names) = stack(services, depth);
    let file = SourceFile::new("stack.toml", text.clone());
    let opts = BuildOptions::default();

    let t0 = Instant::now();
    let diags = llb_gen::check(&file, &opts);
    let check = t0.elapsed();
    assert!(!diags.has_errors(), "{}", diags.render(&file));

    let t0 = Instant::now();
    let (stack, diags) = llb_gen::stack::parse(&file);
    let parse = t0.elapsed();
    assert!(!diags.has_errors(), "{}", diags.render(&file));

    let t0 = Instant::now();
    let mut bytes = 0usize;
    let mut ops = 0usize;
    let mut phases = [Duration::ZERO; 3];
    let mut services_time = Duration::ZERO;
    for n in &names {
        let o = BuildOptions {
            target: Some(n.clone()),
            ..opts.clone()
        };
        let t = Instant::now();
        let (b, k, p) = one(&stack, &file, &o);
        if n.starts_with('s') {
            services_time += t.elapsed();
        }
        bytes += b;
        ops += k;
        for (sum, d) in phases.iter_mut().zip(p) {
            *sum += d;
        }
    }
    let llb = t0.elapsed();

    let t0 = Instant::now();
    let deepest = format!("c{}", depth.saturating_sub(1));
    let (deep_bytes, _, _) = one(
        &stack,
        &file,
        &BuildOptions {
            target: Some(if depth > 0 { deepest } else { "base".into() }),
            ..opts.clone()
        },
    );
    let deep = t0.elapsed();

    if json {
        println!(
            "{{\"services\": {services}, \"depth\": {depth}, \"stack_bytes\": {}, \"targets\": {}, \
             \"check_s\": {:.3}, \"parse_s\": {:.4}, \"all_targets_llb_s\": {:.3}, \"all_services_llb_s\": {:.3}, \"deepest_target_llb_s\": {:.4}, \
             \"plan_s\": {:.3}, \"convert_s\": {:.3}, \"encode_s\": {:.3}, \"definition_bytes_total\": {bytes}, \"definition_ops_total\": {ops}, \"deepest_definition_bytes\": {deep_bytes}}}",
            text.len(),
            names.len(),
            secs(check),
            secs(parse),
            secs(llb),
            secs(services_time),
            secs(deep),
            secs(phases[0]),
            secs(phases[1]),
            secs(phases[2])
        );
    } else {
        println!(
            "scale stack: {services} services + a {depth}-deep chain ({} targets), {} bytes of stack.toml",
            names.len(),
            text.len()
        );
        println!("check (parse, stack-wide checks, every target planned): {:.3} s", secs(check));
        println!("one parse of the file: {:.4} s", secs(parse));
        println!(
            "whole-stack LLB (every target: plan, convert, encode): {:.3} s ({bytes} bytes, {ops} ops)",
            secs(llb)
        );
        println!(
            "  of which plan {:.3} s, convert+marshal {:.3} s, encode {:.3} s",
            secs(phases[0]),
            secs(phases[1]),
            secs(phases[2])
        );
        println!(
            "  of which the {services} services (the stack's deployable images): {:.3} s",
            secs(services_time)
        );
        println!("deepest target alone: {:.4} s ({deep_bytes} bytes)", secs(deep));
    }
}
