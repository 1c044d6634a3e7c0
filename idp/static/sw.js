// The Freigabe device app's service worker, served as /app/sw.js (scope /app/).
//
// - push: a Web Push from the IdP carries only {"type": "approval", "id": ID}
//   or {"type": "notice", "id": ID} (docs/device-api.md). It shows a
//   notification (texts from /app/messages.json, in the browser's language):
//   for an approval tagged with its id, with the link /app/#approval=ID; for a
//   notice (a restoration started, a device added) with the link /app/. Open
//   app pages are told to look again.
// - notificationclick: focuses an open app page and opens the approval there,
//   or opens a new one.
// - fetch: the app shell (page, script, styles, icon) network first, from the
//   cache when offline, so the installed app starts without a connection.
//   Device API calls are left alone.
"use strict";

const SHELL_CACHE = "freigabe-app-v1";
const SCOPE_PATH = new URL(self.registration.scope).pathname; // "/app/"
const MESSAGES_URL = SCOPE_PATH + "messages.json";
const SHELL = [
  SCOPE_PATH,
  SCOPE_PATH + "manifest.webmanifest",
  SCOPE_PATH + "icon.svg",
  SCOPE_PATH + "icon-192.png",
  "/static/app.js",
  "/static/app.css",
  "/static/style.css",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(SHELL_CACHE)
      .then((cache) => cache.addAll(SHELL))
      .catch(() => undefined) // offline start is a bonus, never a reason to fail
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys
        .filter((key) => key.startsWith("freigabe-app-") && key !== SHELL_CACHE)
        .map((key) => caches.delete(key))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") { return; }
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || !SHELL.includes(url.pathname)) { return; }
  event.respondWith(
    fetch(request)
      .then((response) => {
        // The page with ?code=... holds a binding code: never keep that one.
        if (response.ok && !url.search) {
          const copy = response.clone();
          caches.open(SHELL_CACHE).then((cache) => cache.put(url.pathname, copy)).catch(() => undefined);
        }
        return response;
      })
      .catch(() => caches.match(url.pathname).then((cached) => cached || Response.error())),
  );
});

async function texts() {
  try {
    const response = await fetch(MESSAGES_URL, { credentials: "same-origin", cache: "no-store" });
    if (response.ok) {
      const copy = response.clone();
      caches.open(SHELL_CACHE).then((cache) => cache.put(MESSAGES_URL, copy)).catch(() => undefined);
      return await response.json();
    }
  } catch (error) { /* offline: the last texts fetched */ }
  try {
    const cached = await caches.match(MESSAGES_URL);
    if (cached) { return await cached.json(); }
  } catch (error) { /* none */ }
  return { notification: { title: "Freigabe", body: "" } };
}

async function appWindows() {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  return windows.filter((client) => new URL(client.url).pathname.startsWith(SCOPE_PATH));
}

async function notify(data) {
  const localised = await texts();
  if (data && data.type === "notice") {
    const notice = typeof data.id === "string" ? data.id : "";
    for (const client of await appWindows()) {
      client.postMessage({ type: "notice", id: notice });
    }
    const wording = localised.notice || {};
    await self.registration.showNotification(wording.title || "Freigabe", {
      body: wording.body || "",
      lang: localised.lang || "",
      tag: "notice-" + notice,
      icon: SCOPE_PATH + "icon-192.png",
      data: { url: SCOPE_PATH, notice },
    });
    return;
  }
  const notification = localised.notification || {};
  const approval = data && data.type === "approval" && typeof data.id === "string" ? data.id : null;
  for (const client of await appWindows()) {
    client.postMessage({ type: "approval", id: approval });
  }
  const link = approval ? SCOPE_PATH + "#approval=" + encodeURIComponent(approval) : SCOPE_PATH;
  // userVisibleOnly: every push shows a notification.
  await self.registration.showNotification(notification.title || "Freigabe", {
    body: notification.body || "",
    lang: localised.lang || "",
    tag: approval || "freigabe",
    icon: SCOPE_PATH + "icon-192.png",
    data: { url: link, approval },
  });
}

self.addEventListener("push", (event) => {
  let data = null;
  try {
    data = event.data ? event.data.json() : null;
  } catch (error) {
    data = null;
  }
  event.waitUntil(notify(data));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  const link = new URL(typeof data.url === "string" ? data.url : SCOPE_PATH, self.location.origin).href;
  event.waitUntil((async () => {
    const [open] = await appWindows();
    if (open) {
      if (data.approval) { open.postMessage({ type: "open-approval", id: data.approval }); }
      if (data.notice !== undefined) { open.postMessage({ type: "notice", id: data.notice }); }
      try { await open.focus(); } catch (error) { /* not allowed: the page still opens it */ }
      return;
    }
    await self.clients.openWindow(link);
  })());
});
