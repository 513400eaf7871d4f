// Shared by every dashboard page: the API token (kept in sessionStorage, never in the page),
// authorised POSTs, and the formatting the server uses when it renders a page.
"use strict";

window.runner = (function () {
  const KEY = "runner-api-token";
  const params = new URLSearchParams(location.search);
  if (params.has("token")) {
    sessionStorage.setItem(KEY, params.get("token").trim());
    params.delete("token");
    const query = params.toString();
    history.replaceState(null, "", location.pathname + (query ? "?" + query : "") + location.hash);
  }

  function token() {
    return sessionStorage.getItem(KEY) || "";
  }

  function showToken() {
    document.getElementById("token-state").textContent = token() ? "kept for this tab" : "not set";
  }

  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("token");
    sessionStorage.setItem(KEY, input.value.trim());
    input.value = "";
    showToken();
  });
  showToken();

  function say(text, kind) {
    const message = document.getElementById("message");
    message.textContent = text;
    message.dataset.kind = kind || "info";
  }

  // POSTs JSON with the token; resolves to {ok, status, body} and reports refusals.
  async function post(url, body) {
    if (!token()) {
      say("Enter the API token first (the field at the top, or ?token= once).", "error");
      return { ok: false, status: 0, body: null };
    }
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "Authorization": "Bearer " + token(), "Content-Type": "application/json" },
        body: JSON.stringify(body || {}),
      });
    } catch (error) {
      say("Request failed: " + error, "error");
      return { ok: false, status: 0, body: null };
    }
    const answer = await response.json().catch(() => null);
    if (!response.ok) {
      say((answer && answer.error) || ("HTTP " + response.status), "error");
    }
    return { ok: response.ok, status: response.status, body: answer };
  }

  async function getJson(url) {
    const response = await fetch(url, { cache: "no-store" });
    if (!response.ok) {
      throw new Error(url + ": HTTP " + response.status);
    }
    return response.json();
  }

  // `2024-01-02 03:04:05 UTC`, as the server renders times.
  function time(text) {
    return text ? new Date(text).toISOString().slice(0, 19).replace("T", " ") + " UTC" : "";
  }

  // `4.1s`, `3m 05s`, `1h 02m`; a running one counts up to now.
  function duration(started, ended) {
    if (!started) {
      return "";
    }
    const millis = Math.max(0, (ended ? Date.parse(ended) : Date.now()) - Date.parse(started));
    const seconds = Math.floor(millis / 1000);
    const pad = (n) => String(n).padStart(2, "0");
    if (seconds < 60) {
      return seconds + "." + Math.floor((millis % 1000) / 100) + "s";
    }
    if (seconds < 3600) {
      return Math.floor(seconds / 60) + "m " + pad(seconds % 60) + "s";
    }
    return Math.floor(seconds / 3600) + "h " + pad(Math.floor((seconds % 3600) / 60)) + "m";
  }

  // An element with a class and text; text always goes through textContent.
  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function status(text) {
    const node = element("span", "status", text);
    node.dataset.status = text;
    return node;
  }

  const TERMINAL = ["Succeeded", "Failed", "Stopped", "Superseded", "Cancelled", "Abandoned"];

  return { token, post, getJson, say, time, duration, element, status, TERMINAL };
})();
