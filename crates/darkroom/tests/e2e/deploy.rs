//! The compose file, the Dockerfile and the AWS template, checked statically in seconds:
//! they parse, every darkroom service runs a real subcommand of this very binary, and the
//! wiring (environment, health checks, start order) is right. The compose tier
//! (`tests/compose.rs`) runs the first two for real where Docker runs.

use crate::helpers::BIN;
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

fn repository_file(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(name)).unwrap()
}

fn compose() -> Yaml {
    let mut documents =
        YamlLoader::load_from_str(&repository_file("docker-compose.yml")).expect("docker-compose.yml parses");
    documents.remove(0)
}

const DARKROOM_SERVICES: [&str; 4] = ["setup", "web", "worker", "status"];

#[test]
fn compose_services_run_real_darkroom_subcommands() {
    let compose = compose();
    let services = &compose["services"];
    for name in DARKROOM_SERVICES {
        let service = &services[name];
        assert_eq!(service["image"].as_str(), Some("darkroom:local"), "{name}");
        let command: Vec<&str> = service["command"].as_vec().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        let help = std::process::Command::new(BIN).args(&command).arg("--help").output().unwrap();
        assert!(
            help.status.success(),
            "service {name} runs `darkroom {}`, which this binary does not have",
            command.join(" ")
        );
        let environment = &service["environment"];
        assert_eq!(environment["DARKROOM_BACKEND"].as_str(), Some("aws"), "{name}");
        assert_eq!(environment["AWS_ENDPOINT_URL"].as_str(), Some("http://localstack:4566"), "{name}");
        for variable in
            ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "DARKROOM_BUCKET", "DARKROOM_QUEUE_PREFIX"]
        {
            assert!(environment[variable].as_str().is_some(), "{name} lacks {variable}");
        }
        // Every setting the compose file sets must be one the binary reads.
        let help_text =
            String::from_utf8_lossy(&std::process::Command::new(BIN).arg("--help").output().unwrap().stdout)
                .into_owned();
        for (key, _) in environment.as_hash().unwrap() {
            let key = key.as_str().unwrap();
            if key.starts_with("DARKROOM_") {
                assert!(help_text.contains(key), "{key} is not a darkroom setting");
            }
        }
    }
    assert!(
        services["build"].is_badvalue()
            && services["setup"]["build"]["dockerfile"].as_str() == Some("deploy/Dockerfile")
    );
}

#[test]
fn compose_starts_things_in_order_and_checks_their_health() {
    let compose = compose();
    let services = &compose["services"];
    let localstack = &services["localstack"];
    let image = localstack["image"].as_str().unwrap();
    assert_eq!(image, "localstack/localstack:4.9.2", "LocalStack is pinned to a release that needs no auth token");
    assert!(!localstack["healthcheck"]["test"].is_badvalue());
    assert_eq!(services["setup"]["depends_on"]["localstack"]["condition"].as_str(), Some("service_healthy"));
    for name in ["web", "worker", "status"] {
        assert_eq!(
            services[name]["depends_on"]["setup"]["condition"].as_str(),
            Some("service_completed_successfully"),
            "{name}"
        );
        let check = services[name]["healthcheck"]["test"].as_vec().unwrap();
        assert!(check.iter().any(|part| part.as_str().is_some_and(|p| p.ends_with("/readyz"))), "{name} health check");
    }
    assert_eq!(
        services["web"]["ports"][0].as_str(),
        Some("${DARKROOM_COMPOSE_WEB_PORT:-8080}:8080"),
        "the web tier on the host's 8080 unless told otherwise"
    );
    assert!(
        services["worker"]["ports"].is_badvalue(),
        "a worker with host ports cannot be scaled with --scale worker=N"
    );
}

#[test]
fn dockerfile_is_multi_stage_non_root_and_builds_the_aws_backend() {
    let dockerfile = repository_file("deploy/Dockerfile");
    assert!(dockerfile.lines().filter(|l| l.starts_with("FROM ")).count() >= 3, "multi-stage");
    assert!(dockerfile.contains("cargo chef cook"), "dependency layer cached");
    assert!(dockerfile.contains("--features aws"));
    // Every feature the image builds with exists, and turbojpeg's build tools are installed.
    let manifest = repository_file("crates/darkroom/Cargo.toml");
    for list in dockerfile.split("--features ").skip(1) {
        for feature in list.split_whitespace().next().unwrap().split(',') {
            assert!(manifest.contains(&format!("\n{feature} = [")), "the Dockerfile enables unknown feature {feature}");
        }
    }
    if dockerfile.contains("turbojpeg") {
        assert!(dockerfile.contains("cmake") && dockerfile.contains("nasm"), "turbojpeg needs cmake and nasm");
    }
    if dockerfile.contains(",heic") {
        // libheif is built from source against libde265, which the runtime image must have too.
        assert!(dockerfile.contains("libde265-dev") && dockerfile.contains("pkg-config"), "heic needs libde265-dev");
        let runtime = dockerfile.rsplit("FROM ").next().unwrap();
        assert!(runtime.contains("libde265-0"), "the runtime image lacks libde265 for HEIC");
        assert!(runtime.contains("libjpeg62-turbo"), "the runtime image lacks libjpeg, which libheif links");
    }
    let user = dockerfile.lines().rev().find(|l| l.starts_with("USER ")).unwrap();
    assert_ne!(user.trim(), "USER root");
    assert!(dockerfile.contains("ENTRYPOINT [\"darkroom\"]"));
}

#[test]
fn aws_template_uses_the_contract_queue_names_with_dead_letter_queues() {
    let mut documents =
        YamlLoader::load_from_str(&repository_file("deploy/aws/darkroom.yaml")).expect("template parses");
    let template = documents.remove(0);
    let resources = template["Resources"].as_hash().unwrap();
    let mut queue_names = Vec::new();
    for (_, resource) in resources {
        if resource["Type"].as_str() == Some("AWS::SQS::Queue") {
            queue_names.push(resource["Properties"]["QueueName"]["Fn::Sub"].as_str().unwrap().to_owned());
            let redrive = &resource["Properties"]["RedrivePolicy"];
            if !redrive.is_badvalue() {
                assert!(!redrive["deadLetterTargetArn"].is_badvalue() && !redrive["maxReceiveCount"].is_badvalue());
            }
        }
    }
    queue_names.sort();
    let expected = [
        "requests-quick",
        "requests-quick-dlq",
        "requests-slow",
        "requests-slow-dlq",
        "responses",
        "responses-dlq",
        "webhooks",
        "webhooks-dlq",
    ]
    .map(|suffix| format!("${{QueuePrefix}}-{suffix}"));
    assert_eq!(queue_names, expected);
    // Each role's instances run a real darkroom subcommand.
    for (_, resource) in resources {
        if resource["Type"].as_str() == Some("AWS::EC2::LaunchTemplate") {
            let script =
                resource["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"].as_str().unwrap();
            let command = script.split("${Image} ").nth(1).unwrap().trim();
            let args: Vec<&str> = command.split_whitespace().collect();
            let help = std::process::Command::new(BIN).args(&args).arg("--help").output().unwrap();
            assert!(help.status.success(), "launch template runs `darkroom {command}`");
        }
    }
}
