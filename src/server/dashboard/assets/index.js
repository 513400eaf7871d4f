// `/`: polls the pipelines and the newest executions every second and re-renders both tables;
// a pipeline's Start button queues a manual start.
"use strict";

(function () {
  const { getJson, post, say, time, duration, element, status } = window.runner;
  let shown = "";

  function link(execution) {
    const anchor = element("a", null, execution.id);
    anchor.href = "/executions/" + encodeURIComponent(execution.id);
    return anchor;
  }

  function cell(...children) {
    const node = element("td");
    node.append(...children);
    return node;
  }

  function pipelineRow(pipeline, latest) {
    const row = element("tr");
    row.dataset.pipeline = pipeline.name;
    const start = element("button", "start", "Start");
    start.dataset.pipeline = pipeline.name;
    row.append(
      cell(pipeline.name),
      cell(pipeline.repo + " @ " + pipeline.branch),
      cell(latest ? link(latest) : ""),
      cell(latest ? status(latest.status) : ""),
      cell(latest ? time(latest.started_at) : ""),
      cell(String(pipeline.queued)),
      cell(start),
    );
    return row;
  }

  function executionRow(execution) {
    const row = element("tr");
    row.append(
      cell(link(execution)),
      cell(execution.pipeline),
      cell(status(execution.status)),
      cell(execution.trigger),
      cell(time(execution.started_at)),
      cell(execution.ended_at ? duration(execution.started_at, execution.ended_at) : ""),
    );
    return row;
  }

  async function refresh() {
    try {
      const pipelines = await getJson("/api/v1/pipelines");
      const latest = await Promise.all(pipelines.map((p) =>
        getJson("/api/v1/executions?limit=1&pipeline=" + encodeURIComponent(p.name))
          .then((answer) => answer.executions[0])));
      const recent = (await getJson("/api/v1/executions?limit=20")).executions;
      const text = JSON.stringify([pipelines, latest, recent]);
      if (text === shown) {
        return;
      }
      shown = text;
      document.querySelector("#pipelines tbody")
        .replaceChildren(...pipelines.map((p, i) => pipelineRow(p, latest[i])));
      document.querySelector("#executions tbody").replaceChildren(...recent.map(executionRow));
    } catch (error) {
      say("Cannot read the pipelines: " + error.message, "error");
    }
  }

  document.getElementById("pipelines").addEventListener("click", async (event) => {
    const button = event.target.closest("button.start");
    if (!button) {
      return;
    }
    const name = button.dataset.pipeline;
    const answer = await post("/api/v1/pipelines/" + encodeURIComponent(name) + "/executions");
    if (answer.ok) {
      say("Queued a start of " + name + ".", "info");
    }
    refresh();
  });

  refresh();
  setInterval(refresh, 1000);
})();
