import SwarmHTTP

/// The dashboard's static files, compiled into the binary: no build step, no network access
/// needed (no CDN), nothing read from disk. They hold no cluster data, so they are served
/// without the token (`publicPaths`); every figure comes from `/api/`, which needs it.
public enum DashboardPage {
    /// Paths served here, and so reachable without a token.
    public static let publicPaths: Set<String> = ["/", "/dashboard.css", "/dashboard.js"]

    /// The answer for one of `publicPaths` (nil: not one of them).
    public static func response(for path: Substring) -> HTTPResponse? {
        switch path {
        case "/": file("text/html; charset=utf-8", html)
        case "/dashboard.css": file("text/css; charset=utf-8", css)
        case "/dashboard.js": file("text/javascript; charset=utf-8", DashboardScript.source)
        default: nil
        }
    }

    /// Scripts and styles from this origin only (none inline), nothing framed elsewhere.
    static let securityHeaders: [(name: String, value: String)] = [
        ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-cache"),
    ]

    private static func file(_ type: String, _ text: String) -> HTTPResponse {
        HTTPResponse(status: .ok, headers: [("Content-Type", type)] + securityHeaders, body: Array(text.utf8))
    }

    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>swarm</title>
        <link rel="stylesheet" href="/dashboard.css">
        </head>
        <body>
        <header>
          <h1><a href="#/">swarm</a></h1>
          <nav><a href="#/">cluster</a> <a href="#/tasks">tasks</a></nav>
          <span id="status"></span>
        </header>
        <form id="token-form" hidden>
          <p>This cluster has a token. Enter it to see the dashboard (kept in this tab's session storage only).</p>
          <input id="token-input" type="password" autocomplete="off" placeholder="cluster token">
          <button type="submit">Use token</button>
        </form>
        <main id="view"><p>Loading&hellip;</p></main>
        <script src="/dashboard.js"></script>
        </body>
        </html>
        """#

    static let css = #"""
        :root { --fg: #1d2330; --muted: #667085; --line: #d0d5dd; --bg: #f8f9fb; --ok: #157f3b; --bad: #b42318; --run: #175cd3; --wait: #a15c07; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
        header { display: flex; gap: 1.5em; align-items: baseline; padding: .6em 1.2em; background: #fff; border-bottom: 1px solid var(--line); }
        header h1 { margin: 0; font-size: 1.2em; }
        header a { color: inherit; text-decoration: none; margin-right: .8em; }
        #status { margin-left: auto; color: var(--muted); }
        main { padding: 1em 1.2em; }
        h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
        table { border-collapse: collapse; background: #fff; width: 100%; }
        th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { color: var(--muted); font-weight: 600; }
        .cards { display: flex; gap: 1em; flex-wrap: wrap; }
        .card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .6em 1em; min-width: 8em; }
        .card b { display: block; font-size: 1.5em; }
        .bars { display: flex; align-items: flex-end; gap: 2px; height: 60px; background: #fff; border: 1px solid var(--line); padding: 4px; }
        .bars div { flex: 1; background: var(--run); min-height: 1px; }
        .state-succeeded { color: var(--ok); } .state-running { color: var(--run); } .state-queued { color: var(--wait); }
        .state-failed, .state-timed_out, .state-silence_killed, .state-lost, .state-health_failed, .state-spawn_failed, .state-dependency_failed { color: var(--bad); }
        .state-cancelled, .muted { color: var(--muted); }
        pre#log { background: #101828; color: #e4e7ec; padding: .8em; min-height: 6em; max-height: 60vh; overflow: auto; white-space: pre-wrap; }
        form.filters { display: flex; gap: .6em; margin-bottom: .8em; flex-wrap: wrap; }
        #token-form { padding: 1em 1.2em; background: #fff4e5; border-bottom: 1px solid var(--line); }
        .error { color: var(--bad); }
        """#
}
