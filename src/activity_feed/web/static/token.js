// The access token, when the service has one: asked for once (when the API first answers 401), kept in
// sessionStorage (gone when the tab closes, never shared with other sites), sent as `Authorization:
// Bearer` on fetches and as `?token=` on the stream, since browsers cannot set headers on a WebSocket.

const KEY = "activity-feed-token";
let pending = null; // one dialog however many requests are refused at once
let memory = null; // the token typed into this page, for when sessionStorage is unavailable

export function currentToken() {
  try {
    return sessionStorage.getItem(KEY) || null;
  } catch {
    return null; // storage disabled: the dialog will ask again on the next 401
  }
}

function remember(token) {
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    // Storage disabled: the token lives as long as this page does.
  }
  memory = token;
}

/** The token to send: stored, or the one typed into this page when storage is unavailable. */
export function token() {
  return currentToken() ?? memory;
}

/**
 * Ask for a token; resolves with it, or with null if the user cancels. `rejected` says the token that was
 * sent was refused, so the dialog says so instead of just asking.
 */
export function askForToken(rejected) {
  pending ??= showDialog(rejected).finally(() => {
    pending = null;
  });
  return pending;
}

function showDialog(rejected) {
  const dialog = document.createElement("dialog");
  dialog.className = "glass token-dialog";
  dialog.setAttribute("aria-labelledby", "token-title");
  dialog.innerHTML = `
    <form method="dialog">
      <h2 id="token-title">Access token</h2>
      <p class="token-message"></p>
      <label>Token <input name="token" type="password" autocomplete="off" required spellcheck="false"></label>
      <div class="token-actions">
        <button class="button ghost" type="button" value="cancel">Cancel</button>
        <button class="button" type="submit" value="ok">Open the feed</button>
      </div>
    </form>`;
  dialog.querySelector(".token-message").textContent = rejected
    ? "That token was refused. Enter the read or write token of this feed."
    : "This feed needs a token: its read token (ACTIVITY_FEED_READ_TOKEN) or write token.";
  document.body.append(dialog);
  const input = dialog.querySelector("input");
  return new Promise((resolve) => {
    dialog.querySelector('button[value="cancel"]').addEventListener("click", () => dialog.close(""));
    dialog.addEventListener("close", () => {
      const value = dialog.returnValue === "ok" ? input.value.trim() : "";
      dialog.remove();
      if (value) {
        remember(value);
        // The stream picks the new token up when it next connects: tell it to connect now.
        window.dispatchEvent(new Event("activity-feed-token"));
      }
      resolve(value || null);
    });
    dialog.showModal();
    input.focus();
  });
}
