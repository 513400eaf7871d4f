// `/executions/{id}`: polls the execution's JSON every second and re-renders its stages, follows
// the log stream (Server-Sent Events) into the log pane, and retries a failed stage.
"use strict";

(function () {
  const { getJson, post, say, duration, element, status, TERMINAL } = window.runner;
  const id = document.body.dataset.execution;
  const structure = JSON.parse(document.body.dataset.structure || "[]");
  const base = "/api/v1/executions/" + encodeURIComponent(id);
  const log = document.getElementById("log");
  const logState = document.getElementById("log-state");
  let stream = null;
  let shown = "";

  // The served pipeline's stages, then any recorded stage it no longer has.
  function stages(detail) {
    const list = structure.map((stage) => ({ name: stage.name, actions: stage.actions.slice() }));
    for (const run of detail.attempts) {
      let stage = list.find((s) => s.name === run.stage);
      if (!stage) {
        stage = { name: run.stage, actions: [] };
        list.push(stage);
      }
      if (!stage.actions.includes(run.action)) {
        stage.actions.push(run.action);
      }
    }
    return list;
  }

  function actionRow(name, run) {
    const state = run ? run.status : "Pending";
    const row = element("li", "action");
    row.dataset.action = name;
    row.dataset.status = state;
    row.append(
      element("span", "name", name), " ",
      element("span", "action-status", state), " ",
      element("span", "attempt", run ? "#" + run.attempt : ""), " ",
      element("span", "duration", run && run.ended_at ? duration(run.started_at, run.ended_at) : ""),
    );
    if (run && run.error) {
      row.append(element("div", "error", run.error));
    }
    return row;
  }

  function card(detail, stage, terminal) {
    const attempts = detail.stages.filter((s) => s.stage === stage.name);
    const attempt = attempts[attempts.length - 1];
    const state = attempt ? attempt.status : "Pending";
    const node = element("div", "stage");
    node.dataset.stage = stage.name;
    node.dataset.status = state;
    const title = element("h2", null, stage.name + " ");
    title.append(
      element("span", "stage-status", state), " ",
      element("span", "attempt", attempt ? "attempt " + attempt.attempt : ""),
    );
    const actions = element("ul", "actions");
    for (const name of stage.actions) {
      actions.append(actionRow(name, detail.actions.find((a) => a.stage === stage.name && a.action === name)));
    }
    node.append(title, actions);
    if (terminal && ["Failed", "Stopped", "Abandoned"].includes(state)) {
      const button = element("button", "retry", "Retry");
      button.dataset.stage = stage.name;
      node.append(button);
    }
    return node;
  }

  function render(detail) {
    const state = document.getElementById("status");
    state.textContent = detail.status;
    state.dataset.status = detail.status;
    document.getElementById("status-summary").textContent = detail.status_summary || "";
    document.getElementById("duration").textContent = detail.ended_at
      ? duration(detail.started_at, detail.ended_at) : "running " + duration(detail.started_at);
    const terminal = TERMINAL.includes(detail.status);
    const text = JSON.stringify(detail);
    if (text !== shown || !terminal) {
      shown = text;
      document.getElementById("stages").replaceChildren(...stages(detail).map((s) => card(detail, s, terminal)));
    }
    if (!terminal && !stream) {
      follow();
    }
  }

  async function refresh() {
    try {
      render(await getJson(base));
    } catch (error) {
      say("Cannot read the execution: " + error.message, "error");
    }
  }

  function append(className, text) {
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(element("span", className, text + "\n"));
    if (atBottom) {
      log.scrollTop = log.scrollHeight;
    }
  }

  // (Re)opens the log stream; the server sends every line again, so the pane starts empty.
  function follow() {
    if (stream) {
      stream.close();
    }
    stream = new EventSource(base + "/logs/stream");
    stream.addEventListener("open", () => {
      log.replaceChildren();
      logState.textContent = "live";
    });
    stream.addEventListener("phase", (event) => {
      const data = JSON.parse(event.data);
      append("phase", "▶ " + data.action + " · attempt " + data.attempt + " · " + data.phase);
    });
    stream.addEventListener("log", (event) => {
      const data = JSON.parse(event.data);
      append("line", "[" + data.action + "] " + data.line);
    });
    stream.addEventListener("status", () => refresh());
    stream.addEventListener("end", (event) => {
      stream.close();
      stream = null;
      logState.textContent = "ended: " + JSON.parse(event.data).status;
      refresh();
    });
    stream.addEventListener("fault", (event) => {
      stream.close();
      stream = null;
      logState.textContent = "stopped: " + JSON.parse(event.data).error;
    });
  }

  document.getElementById("stages").addEventListener("click", async (event) => {
    const button = event.target.closest("button.retry");
    if (!button) {
      return;
    }
    button.disabled = true;
    const stage = button.dataset.stage;
    const url = base + "/stages/" + encodeURIComponent(stage) + "/retry";
    const answer = await post(url, { mode: "failed_actions" });
    if (answer.ok) {
      say("Retrying stage " + stage + " (" + answer.body.mode + ").", "info");
      follow();
    } else {
      button.disabled = false;
    }
    refresh();
  });

  follow();
  refresh();
  setInterval(refresh, 1000);
})();
