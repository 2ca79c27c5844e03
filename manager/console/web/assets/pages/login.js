import * as api from "../api.js";
import { h, clear, field, notice } from "../ui.js";

// render draws the login form. An inactive user gets the API's reason
// (403), a wrong pair the 401's; both are shown as they come.
export function render(root, { message, onLoggedIn }) {
  const email = field("Email", h("input", { type: "email", id: "login-email", autocomplete: "username", required: true }));
  const password = field("Password", h("input", { type: "password", id: "login-password", autocomplete: "current-password", required: true }));
  const msg = h("div", { id: "login-message" }, message ? notice("info", message) : null);
  const submit = h("button", { type: "submit", id: "login-submit" }, "LOG IN");
  const form = h("form", { class: "login-form", novalidate: true }, h("h1", {}, "Berth console"), msg, email, password, submit);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    email.setError();
    password.setError();
    clear(msg);
    const em = email.input.value.trim();
    const pw = password.input.value;
    if (!em) email.setError("Enter your email.");
    if (!pw) password.setError("Enter your password.");
    if (!em || !pw) return;
    submit.disabled = true;
    try {
      const user = await api.login(em, pw);
      onLoggedIn(user);
    } catch (err) {
      let text = err.message;
      if (err.status === 403) text = `This account is inactive and cannot log in: ${err.message}`;
      else if (err.status === 401) text = "Wrong email or password.";
      clear(msg, notice("error", text));
      const fe = err.fieldErrors ? err.fieldErrors() : {};
      if (fe.email) email.setError(fe.email);
      if (fe.password) password.setError(fe.password);
    } finally {
      submit.disabled = false;
    }
  });
  clear(root, h("div", { class: "login-page" }, form));
  email.input.focus();
}
