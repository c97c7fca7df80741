import Foundation
import SwarmNode

/// The synthetic agent that ships with swarm: a stand-in for an LLM coding-agent CLI that
/// reads a prompt on stdin, answers promptly, prints its "work" in bursts separated by
/// pauses, and exits with a chosen code. `swarm bench` writes it next to its report and
/// declares it as a runtime, so agent workloads exercise the whole runtime path (template,
/// prompt on stdin, `$SWARM_MODEL`, health checks, output bursts) without any real model.
///
/// It is a POSIX `sh` script (dash is enough) that forks nothing but `sleep`, so thousands
/// can run at once on one machine. Its environment:
/// - `SWARM_SIM_DURATION`: seconds the run takes (decimals allowed; default 1),
/// - `SWARM_SIM_BURSTS`: bursts of output between the first line and `done` (default 5),
/// - `SWARM_SIM_EXIT`: exit code (default 0),
/// - `SWARM_MODEL` (set by the worker) or `--model M`: echoed in the first line.
///
/// `--version` prints `swarm-synthetic-agent 1` (the runtime's health check).
public enum SyntheticAgent {
    /// The script's file name.
    public static let fileName = "swarm-synthetic-agent.sh"
    /// The runtime name the bench gives it in a local cluster's `cluster.json`.
    public static let runtimeName = "synthetic"
    /// Models it accepts (any name works; these are the ones the `models` workload uses).
    public static let models = ["fast", "balanced", "deep"]
    /// What `--version` prints; the health check expects the part before the space.
    public static let versionLine = "swarm-synthetic-agent 1"

    /// The script's text. Timing is integer milliseconds (dash has no floating point):
    /// the run is split into `bursts + 1` equal pauses.
    public static let script = #"""
    #!/bin/sh
    # swarm-synthetic-agent: a stand-in for an LLM coding-agent CLI, written by `swarm bench`.
    # Prompt on stdin; SWARM_SIM_DURATION (s), SWARM_SIM_BURSTS, SWARM_SIM_EXIT; --model M.
    model=${SWARM_MODEL:-}
    while [ $# -gt 0 ]; do
      case $1 in
        --version) echo "swarm-synthetic-agent 1"; exit 0 ;;
        --model) shift; if [ $# -gt 0 ]; then model=$1; shift; fi ;;
        *) shift ;;
      esac
    done
    [ -n "$model" ] || model=default
    duration=${SWARM_SIM_DURATION:-1}
    bursts=${SWARM_SIM_BURSTS:-5}
    code=${SWARM_SIM_EXIT:-0}
    case $duration in ''|*[!0-9.]*|*.*.*) duration=1 ;; esac
    case $bursts in ''|*[!0-9]*) bursts=5 ;; esac
    case $code in ''|*[!0-9]*) code=1 ;; esac
    # The whole prompt: its first line is echoed, the rest is drained.
    first=
    lines=0
    if IFS= read -r first || [ -n "$first" ]; then lines=1; fi
    while IFS= read -r rest || [ -n "$rest" ]; do lines=$((lines + 1)); rest=; done
    printf 'thinking about: %.60s [model %s]\n' "$first" "$model"
    # Seconds with decimals -> whole milliseconds, without leading zeros (octal in $(( ))).
    whole=${duration%%.*}
    frac=
    case $duration in *.*) frac=${duration#*.} ;; esac
    frac=${frac}000
    while [ ${#frac} -gt 3 ]; do frac=${frac%?}; done
    while [ "${whole#0}" != "$whole" ]; do whole=${whole#0}; done
    while [ "${frac#0}" != "$frac" ]; do frac=${frac#0}; done
    ms=$(( ${whole:-0} * 1000 + ${frac:-0} ))
    step=$(( ms / (bursts + 1) ))
    ps=$(( step / 1000 ))
    pm=$(( step % 1000 ))
    if [ $pm -lt 10 ]; then pm=00$pm; elif [ $pm -lt 100 ]; then pm=0$pm; fi
    pause=$ps.$pm
    i=1
    while [ $i -le $bursts ]; do
      sleep $pause
      # One printf: one write, so the worker reads each burst at once.
      printf 'step %d/%d (%s): reading files\n  edit: src/module%d.swift (+%d -%d)\n  test: %d passed\n' \
        $i $bursts "$model" $i $((i * 7)) $((i * 3)) $((i * 11))
      i=$((i + 1))
    done
    sleep $pause
    echo "done ($lines prompt lines, $bursts bursts, ${ms} ms)"
    exit $code
    """#

    /// Writes the script to `directory/swarm-synthetic-agent.sh` (creating the directory),
    /// mode 0755 (whatever the umask), and returns its absolute path.
    public static func write(to directory: String) throws -> String {
        var dir = directory
        if !dir.hasPrefix("/") {
            dir = FileManager.default.currentDirectoryPath + "/" + dir
        }
        dir = (dir as NSString).standardizingPath
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/" + fileName
        // Not Foundation's writer: its descriptor is inherited by children spawned meanwhile,
        // and one still open for writing makes exec-ing the script fail ETXTBSY.
        try Files.writeAtomically(Array((script + "\n").utf8), to: path, mode: 0o755)
        return path
    }

    /// The health check: `/bin/sh SCRIPT --version`, expecting `swarm-synthetic-agent`.
    public static func healthCheck(scriptPath: String) -> HealthCheckSpec {
        HealthCheckSpec(command: ["/bin/sh", scriptPath, "--version"], expect: "swarm-synthetic-agent")
    }

    /// The runtime a worker needs to run the script: `/bin/sh SCRIPT --model {model}`, the
    /// prompt on stdin, default model `fast`, and the `--version` health check.
    public static func runtime(scriptPath: String, name: String = runtimeName) -> RuntimeDefinition {
        RuntimeDefinition(name: name, command: ["/bin/sh", scriptPath, "--model", "{model}"],
                          promptOnStdin: true, defaultModel: "fast", health: healthCheck(scriptPath: scriptPath))
    }

    /// The runtime as a `cluster.json` fragment: `"synthetic": {...}`, to go inside the
    /// top-level `runtimes` object.
    public static func clusterJSONFragment(scriptPath: String, name: String = runtimeName) -> String {
        func quoted(_ s: String) -> String {
            let data = (try? JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
            let array = String(decoding: data, as: UTF8.self)
            return String(array.dropFirst().dropLast())
        }
        let script = quoted(scriptPath)
        return """
        \(quoted(name)): {"command": ["/bin/sh", \(script), "--model", "{model}"], "promptOnStdin": true, \
        "defaultModel": "fast", "health": {"command": ["/bin/sh", \(script), "--version"], \
        "expect": "swarm-synthetic-agent", "timeoutSeconds": 10}}
        """
    }

    /// The environment that makes one run take `seconds` with `bursts` bursts and exit `exitCode`.
    public static func environment(seconds: Double, bursts: Int, exitCode: Int = 0) -> [String: String] {
        ["SWARM_SIM_DURATION": String(format: "%.3f", max(0, seconds)),
         "SWARM_SIM_BURSTS": String(max(0, bursts)),
         "SWARM_SIM_EXIT": String(max(0, min(255, exitCode)))]
    }
}
