// Show the new passkey in the list once django-otp-webauthn reports it saved.
document.addEventListener("otp_webauthn.register_complete", () => {
  window.location.reload();
});
