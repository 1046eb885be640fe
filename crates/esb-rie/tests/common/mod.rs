//! Shared harness for esb-rie's integration tests: start an emulator (esb-rie or AWS's RIE)
//! hosting a test function on loopback ports, invoke it, and normalise what differs per run.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use esb_testkit::http::{Client, Response};
use esb_testkit::{Child, cargo_bin, free_port, install, wait_for_port, workspace_root};

pub const INVOKE: &str = "/2015-03-31/functions/function/invocations";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emulator {
    Esb,
    Aws,
}

impl Emulator {
    pub const BOTH: [Emulator; 2] = [Emulator::Esb, Emulator::Aws];

    pub fn binary(self) -> PathBuf {
        match self {
            Emulator::Esb => PathBuf::from(env!("CARGO_BIN_EXE_esb-rie")),
            Emulator::Aws => install::aws_rie(),
        }
    }
}

/// What runs behind the emulator.
#[derive(Clone, Debug)]
pub enum Function {
    /// tests/functions/echo on lambda_runtime.
    RustEcho,
    /// `python3 -m awslambdaric <module.function>` from tests/functions/python.
    Python(&'static str),
    /// A runtime that never calls the Runtime API: the test plays the runtime itself.
    Idle,
}

/// A running emulator with its function.
pub struct Env {
    pub emulator: Emulator,
    pub child: Child,
    pub port: u16,
    pub runtime_port: u16,
}

impl Env {
    pub fn start(emulator: Emulator, function: Function, timeout_secs: u64) -> Env {
        let port = free_port();
        let runtime_port = free_port();
        let mut cmd = Command::new(emulator.binary());
        cmd.arg("--runtime-interface-emulator-address")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--runtime-api-address")
            .arg(format!("127.0.0.1:{runtime_port}"))
            .env("AWS_LAMBDA_FUNCTION_TIMEOUT", timeout_secs.to_string())
            .env_remove("AWS_LAMBDA_FUNCTION_HANDLER")
            .env_remove("_HANDLER");
        match function {
            Function::RustEcho => {
                cmd.arg(cargo_bin("esb-echo", "echo"));
            }
            Function::Python(handler) => {
                cmd.arg(install::awslambdaric_python())
                    .args(["-m", "awslambdaric"])
                    .arg(handler)
                    .current_dir(workspace_root().join("tests/functions/python"));
            }
            Function::Idle => {
                cmd.args(["sleep", "100000"]);
            }
        }
        let name = match emulator {
            Emulator::Esb => "esb-rie",
            Emulator::Aws => "aws-rie",
        };
        let child = Child::spawn(name, cmd).expect("spawn emulator");
        wait_for_port(port, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", child.log()));
        wait_for_port(runtime_port, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", child.log()));
        Env {
            emulator,
            child,
            port,
            runtime_port,
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port).expect("connect to the invoke endpoint")
    }

    /// One invoke on a fresh connection.
    pub fn invoke(&self, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.client()
            .post(INVOKE, headers, body)
            .unwrap_or_else(|e| panic!("{:?} invoke: {e}\n{}", self.emulator, self.child.log()))
    }

    /// A client of the Runtime API, for tests that play the runtime.
    pub fn runtime(&self) -> Client {
        Client::connect(self.runtime_port).expect("connect to the runtime API")
    }
}

/// Replaces every UUID (8-4-4-4-12 hex) with `<uuid>`, so bodies that embed request ids compare.
pub fn without_uuids(text: &str) -> String {
    let b = text.as_bytes();
    let groups = [8usize, 4, 4, 4, 12];
    let total = 36;
    let is_uuid_at = |i: usize| -> bool {
        if i + total > b.len() {
            return false;
        }
        let mut at = i;
        for (n, g) in groups.iter().enumerate() {
            if !b[at..at + g].iter().all(u8::is_ascii_hexdigit) {
                return false;
            }
            at += g;
            if n < 4 {
                if b[at] != b'-' {
                    return false;
                }
                at += 1;
            }
        }
        true
    };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if is_uuid_at(i) {
            out.push_str("<uuid>");
            i += total;
        } else {
            let ch = text[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// The echo function's body: its API Gateway proxy envelope and the inner JSON.
pub fn echo_body(res: &Response) -> (serde_json::Value, serde_json::Value) {
    let outer: serde_json::Value = serde_json::from_slice(&res.body)
        .unwrap_or_else(|e| panic!("echo answer is not JSON ({e}): {}", res.text()));
    let inner = outer["body"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(serde_json::Value::Null);
    (outer, inner)
}

#[test]
fn uuids_are_normalised() {
    assert_eq!(
        without_uuids("RequestId: c8f05b60-52ce-4dd5-a798-940598c0d6f7 Error: x"),
        "RequestId: <uuid> Error: x"
    );
    assert_eq!(without_uuids("c8f05b60-52ce-4dd5"), "c8f05b60-52ce-4dd5");
}
