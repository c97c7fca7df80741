/// The dashboard's script: three views on the location hash (`#/` the cluster, `#/tasks?…`
/// the task list, `#/task/ID` one task), data from `/api/` only, every text put in with
/// `textContent` (never parsed as HTML). With a token, a 401 shows the token form; the token
/// is kept in `sessionStorage` and sent as `Authorization: Bearer`. The log is read with
/// `fetch` and a stream reader (an `EventSource` cannot send that header) and parsed as
/// Server-Sent Events; each piece is stamped with its arrival time (`data-at`, unix ms).
enum DashboardScript {
    static let source = #"""
        'use strict';
        const view = document.getElementById('view');
        const statusLine = document.getElementById('status');
        let generation = 0;
        let timer = null;
        let follow = null;

        function headers() {
          const token = sessionStorage.getItem('swarm-token');
          return token ? { 'Authorization': 'Bearer ' + token } : {};
        }

        function askToken() {
          const form = document.getElementById('token-form');
          form.hidden = false;
          document.getElementById('token-input').focus();
        }

        document.getElementById('token-form').addEventListener('submit', (event) => {
          event.preventDefault();
          const input = document.getElementById('token-input');
          sessionStorage.setItem('swarm-token', input.value.trim());
          input.value = '';
          document.getElementById('token-form').hidden = true;
          route();
        });

        async function api(path) {
          const response = await fetch(path, { headers: headers(), cache: 'no-store' });
          if (response.status === 401) { askToken(); throw new Error('this cluster wants its token'); }
          if (!response.ok) throw new Error(response.status + ': ' + (await response.text()).trim());
          return response.json();
        }

        function el(tag, attributes, ...children) {
          const node = document.createElement(tag);
          for (const [name, value] of Object.entries(attributes || {})) {
            if (value !== undefined && value !== null) node.setAttribute(name, value);
          }
          for (const child of children) {
            if (child === undefined || child === null) continue;
            node.append(child instanceof Node ? child : String(child));
          }
          return node;
        }

        function table(headings, rows) {
          return el('table', {}, el('thead', {}, el('tr', {}, ...headings.map((h) => el('th', {}, h)))),
            el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells.map((c) => el('td', {}, c))))));
        }

        function stateCell(state) { return el('span', { class: 'state-' + state, 'data-state': state }, state); }
        function taskLink(id) { return el('a', { href: '#/task/' + encodeURIComponent(id), class: 'task-id' }, id); }
        function time(ms) { return ms ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : ''; }
        function seconds(from, to) { return from && to ? ((to - from) / 1000).toFixed(1) + ' s' : ''; }
        function labels(map) { return Object.entries(map || {}).map(([k, v]) => k + '=' + v).join(', '); }
        function card(title, value) { return el('div', { class: 'card' }, title, el('b', {}, value)); }

        function show(...nodes) { view.replaceChildren(...nodes); }
        function failed(error) { show(el('p', { class: 'error' }, String(error.message || error))); }
        function refreshIn(ms, fn, mine) {
          timer = setTimeout(() => { if (mine === generation) fn(mine); }, ms);
        }

        async function clusterView(mine) {
          try {
            const [summary, nodes] = await Promise.all([api('/api/summary'), api('/api/nodes')]);
            if (mine !== generation) return;
            const max = Math.max(1, ...summary.throughput.map((m) => m.ended));
            show(
              el('div', { class: 'cards' },
                card('queued', summary.queued), card('running', summary.running),
                card('slots free', summary.freeSlots + ' / ' + summary.slots),
                card('workers', Object.entries(summary.workers).map(([s, n]) => n + ' ' + s).join(', ') || '0')),
              el('h2', {}, 'Workers'),
              table(['name', 'state', 'connected', 'slots', 'free', 'running', 'completed', 'health', 'labels', 'last seen'],
                nodes.map((n) => [el('span', { class: 'worker-name' }, n.name), stateCell(n.state), n.connected ? 'yes' : 'no',
                  n.slots, n.freeSlots, n.running, n.completed,
                  n.runtimes.map((r) => r.name + (r.healthy ? ' ok' : ' unhealthy')).join(', ') || '-',
                  labels(n.labels), (n.lastSeenMsAgo / 1000).toFixed(1) + ' s ago'])),
              el('h2', {}, 'Tasks ended per minute (last ' + summary.throughput.length + ' minutes)'),
              el('div', { class: 'bars' }, ...summary.throughput.map((m) =>
                el('div', { title: time(m.minute) + ': ' + m.ended, style: 'height:' + Math.round(100 * m.ended / max) + '%' }))),
              el('h2', {}, 'Recent outcomes'),
              table(['task', 'state', 'ended'], summary.recent.map((o) => [taskLink(o.id), stateCell(o.state), time(o.at)])));
            statusLine.textContent = 'updated ' + time(summary.at);
          } catch (error) { failed(error); }
          refreshIn(2000, clusterView, mine);
        }

        function filterForm(query) {
          const input = (name, hint) => el('input', { name, placeholder: hint, value: query.get(name) || '' });
          const form = el('form', { class: 'filters' }, input('state', 'state (e.g. running,queued)'),
            input('node', 'node'), input('model', 'model'), el('button', { type: 'submit' }, 'Filter'));
          form.addEventListener('submit', (event) => {
            event.preventDefault();
            const next = new URLSearchParams();
            for (const name of ['state', 'node', 'model']) if (form.elements[name].value) next.set(name, form.elements[name].value);
            location.hash = '#/tasks?' + next.toString();
          });
          return form;
        }

        async function tasksView(mine, query) {
          try {
            const page = await api('/api/tasks?' + query.toString());
            if (mine !== generation) return;
            const more = page.next ? new URLSearchParams(query) : null;
            if (more) more.set('cursor', page.next);
            show(filterForm(query),
              table(['task', 'state', 'node', 'model', 'submitted', 'ran for'],
                page.tasks.map((t) => [taskLink(t.id), stateCell(t.state), t.node || '', t.model || '',
                  time(t.submittedAt), seconds(t.startedAt, t.finishedAt)])),
              page.tasks.length === 0 ? el('p', { class: 'muted' }, 'No tasks.') : null,
              more ? el('p', {}, el('a', { href: '#/tasks?' + more.toString() }, 'next page')) : null);
          } catch (error) { failed(error); }
          refreshIn(3000, (g) => tasksView(g, query), mine);
        }

        function detail(task) {
          const rows = [['state', stateCell(task.state)], ['command', (task.command || []).join(' ')],
            ['node', task.node], ['runtime', task.runtime], ['model', task.model],
            ['exit code', task.exitCode], ['reason', task.reason], ['wait reason', task.waitReason],
            ['attempts', task.attempts], ['priority', task.priority], ['parent', task.parent ? taskLink(task.parent) : null],
            ['after', (task.after || []).join(', ')], ['labels', labels(task.labels)],
            ['submitted', time(task.submittedAt)], ['started', time(task.startedAt)], ['finished', time(task.finishedAt)]];
          return table(['field', 'value'], rows.filter(([, v]) => v !== undefined && v !== null && v !== ''));
        }

        async function taskView(mine, id) {
          let task;
          try { task = await api('/api/tasks/' + encodeURIComponent(id)); } catch (error) { return failed(error); }
          if (mine !== generation) return;
          const log = el('pre', { id: 'log', 'data-task': id });
          const logState = el('p', { id: 'log-state', class: 'muted' }, 'reading the log…');
          show(el('h2', {}, 'Task ', el('span', { id: 'task-id' }, task.id)), detail(task),
            el('h2', {}, 'Runs'),
            table(['attempt', 'node', 'state', 'exit', 'reason', 'started', 'ran for'], (task.runs || []).map((r) =>
              [r.attempt, r.node || '', stateCell(r.state), r.exitCode ?? '', r.reason || '', time(r.startedAt), seconds(r.startedAt, r.finishedAt)])),
            el('h2', {}, 'Artifacts'),
            table(['path', 'bytes', 'sha256'], (task.artifacts || []).map((a) => [a.path, a.size, a.sha256.slice(0, 16)])),
            el('h2', {}, 'Log'), logState, log);
          followLog(mine, id, log, logState);
        }

        async function followLog(mine, id, log, logState) {
          const controller = new AbortController();
          follow = controller;
          try {
            const response = await fetch('/api/tasks/' + encodeURIComponent(id) + '/log', { headers: headers(), signal: controller.signal });
            if (response.status === 401) { askToken(); throw new Error('this cluster wants its token'); }
            if (!response.ok) throw new Error(response.status + ': ' + (await response.text()).trim());
            logState.textContent = 'following live';
            const reader = response.body.getReader();
            const decoder = new TextDecoder();
            let buffer = '';
            for (;;) {
              const { value, done } = await reader.read();
              if (done || mine !== generation) break;
              buffer += decoder.decode(value, { stream: true });
              let end;
              while ((end = buffer.indexOf('\n\n')) >= 0) {
                event(buffer.slice(0, end), log, logState, mine, id);
                buffer = buffer.slice(end + 2);
              }
            }
          } catch (error) {
            if (mine === generation) logState.textContent = 'log: ' + String(error.message || error);
          }
        }

        function event(block, log, logState, mine, id) {
          let name = 'message';
          const data = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) name = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
          }
          const text = data.join('\n');
          if (name === 'log') {
            if (text) log.append(el('span', { 'data-at': Date.now() }, text));
            log.scrollTop = log.scrollHeight;
          } else if (name === 'end') {
            logState.textContent = 'task ended: ' + text;
            logState.setAttribute('data-ended', text);
            api('/api/tasks/' + encodeURIComponent(id)).then((task) => {
              if (mine === generation) view.querySelector('table').replaceWith(detail(task));
            }).catch(() => {});
          } else if (name === 'dropped') {
            logState.textContent = 'log stream dropped: ' + text;
          }
        }

        function route() {
          generation += 1;
          clearTimeout(timer);
          if (follow) { follow.abort(); follow = null; }
          statusLine.textContent = '';
          const hash = location.hash.replace(/^#/, '') || '/';
          const [path, search] = hash.split('?');
          if (path.startsWith('/task/')) return taskView(generation, decodeURIComponent(path.slice(6)));
          if (path === '/tasks') return tasksView(generation, new URLSearchParams(search || ''));
          return clusterView(generation);
        }

        window.addEventListener('hashchange', route);
        route();
        """#
}
