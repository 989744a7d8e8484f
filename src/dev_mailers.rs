//! [`Mailer`]s for development: see the mails without a mail server.
//!
//! * [`StdoutMailer`] (always available) prints each mail — headers and the plain-text part —
//!   to standard output.
//! * `EmlDirMailer` (feature `smtp`, it reuses the SMTP message builder) writes each mail as
//!   an RFC 5322 `.eml` file, built exactly as the SMTP mailer (`afiliado::smtp`) builds it;
//!   any mail client opens it.
//!
//! **Not for production.** Mails carry activation, unlock and reset links and activation
//! codes: these mailers put them in clear on the terminal (and whatever collects its output:
//! journald, CI logs) or on disk. Use them on a developer's machine, with test data.

use std::fmt::Write as _;
use std::io::Write as _;

use async_trait::async_trait;

use crate::ports::{Mail, MailError, Mailer};

/// Prints every mail to standard output: `Message-ID`, `To`, `Subject`, then the plain-text
/// body, between separator lines (the HTML alternative, if any, is only announced by size).
/// One mail is written with one locked write, so concurrent mails do not interleave.
///
/// **Development only**: links and codes end up in clear on the terminal.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdoutMailer;

impl StdoutMailer {
    /// A mailer printing to standard output.
    #[must_use]
    pub fn new() -> Self {
        Self
    }
}

/// The readable rendering [`StdoutMailer`] prints.
fn render_readable(mail: &Mail) -> String {
    let mut out = String::with_capacity(mail.text.len() + 256);
    // Writing into a String cannot fail.
    let _ = writeln!(out, "----- mail {} -----", mail.message_id);
    let _ = writeln!(out, "Message-ID: {}", mail.message_id);
    let _ = writeln!(out, "To: {}", mail.to.as_str());
    let _ = writeln!(out, "Subject: {}", mail.subject);
    if let Some(html) = &mail.html {
        let _ = writeln!(out, "(HTML alternative: {} bytes, not shown)", html.len());
    }
    out.push('\n');
    out.push_str(&mail.text);
    if !mail.text.ends_with('\n') {
        out.push('\n');
    }
    let _ = writeln!(out, "----- end of mail {} -----", mail.message_id);
    out
}

#[async_trait]
impl Mailer for StdoutMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let text = render_readable(mail);
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| MailError::Transient(format!("writing to stdout failed: {e}")))
    }
}

#[cfg(feature = "smtp")]
pub use eml::EmlDirMailer;

#[cfg(feature = "smtp")]
mod eml {
    use std::io::Write as _;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::SystemTime;

    use async_trait::async_trait;

    use crate::ports::{Mail, MailError, Mailer};
    use crate::smtp::{Sender, SmtpError, build_message, sanitize_message_id};

    /// Distinguishes the temporary files of concurrent writes in one process.
    static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

    /// Writes every mail as `<dir>/<message id>.eml`: the RFC 5322 message the SMTP mailer
    /// would send (same builder, same headers), with the message id sanitised as in the
    /// `Message-ID` (`[A-Za-z0-9._-]` kept, anything else `_`, so the name can never leave
    /// `dir`).
    ///
    /// Each file is written under a temporary name (`.<id>.eml.<pid>.<n>.tmp`) and renamed
    /// into place, so a reader never sees half a file; a resent message (same id) replaces
    /// its file. The directory is created on first use.
    ///
    /// **Development only**: links and codes are stored in clear on disk.
    ///
    /// ```
    /// use afiliado::dev_mailers::EmlDirMailer;
    ///
    /// let mailer = EmlDirMailer::new("target/mails")
    ///     .from("ISSPOL <no-responder@isspol.example.ec>")?;
    /// assert!(mailer.path_for("1710034065/2/0").ends_with("1710034065_2_0.eml"));
    /// # Ok::<(), afiliado::smtp::SmtpError>(())
    /// ```
    #[derive(Clone, Debug)]
    pub struct EmlDirMailer {
        dir: PathBuf,
        sender: Sender,
    }

    impl EmlDirMailer {
        /// A mailer writing into `dir`, with the sender
        /// `Afiliado (desarrollo) <no-responder@afiliado.invalid>` until [`from`](Self::from)
        /// sets another.
        #[must_use]
        pub fn new(dir: impl Into<PathBuf>) -> Self {
            Self {
                dir: dir.into(),
                sender: Sender::development(),
            }
        }

        /// Sets the sender, as for the SMTP mailer: `"Name <local@domain>"` or
        /// `"local@domain"`.
        ///
        /// # Errors
        ///
        /// [`SmtpError::InvalidSender`].
        pub fn from(mut self, from: &str) -> Result<Self, SmtpError> {
            self.sender = Sender::parse(from)?;
            Ok(self)
        }

        /// Where the files go.
        #[must_use]
        pub fn dir(&self) -> &Path {
            &self.dir
        }

        /// The file a mail with `message_id` is written to.
        #[must_use]
        pub fn path_for(&self, message_id: &str) -> PathBuf {
            self.dir
                .join(format!("{}.eml", sanitize_message_id(message_id)))
        }
    }

    /// Writes `bytes` to `tmp`, then renames it to `path`.
    fn write_atomically(dir: &Path, tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
            .and_then(|mut f| {
                f.write_all(bytes)?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(tmp);
        }
        written
    }

    #[async_trait]
    impl Mailer for EmlDirMailer {
        async fn send(&self, mail: &Mail) -> Result<(), MailError> {
            #[allow(clippy::disallowed_methods)] // adapter: the Date header is the time of writing
            let now = SystemTime::now();
            let bytes = build_message(mail, &self.sender, now)?.formatted();
            let id = sanitize_message_id(&mail.message_id);
            let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let tmp = self
                .dir
                .join(format!(".{id}.eml.{}.{n}.tmp", std::process::id()));
            let path = self.path_for(&mail.message_id);
            let dir = self.dir.clone();
            tokio::task::spawn_blocking(move || write_atomically(&dir, &tmp, &path, &bytes))
                .await
                .map_err(|_| MailError::Transient("the .eml writer task failed".into()))?
                .map_err(|e| MailError::Transient(format!("writing the .eml file failed: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_rendering() {
        let mail = Mail::new(
            "k/1",
            "ana@example.ec".parse().unwrap(),
            "Asunto",
            "Hola.\nSu código es 1234.",
        )
        .with_html("<p>Hola.</p>");
        let text = render_readable(&mail);
        assert!(text.starts_with("----- mail k/1 -----\n"));
        assert!(text.contains("To: ana@example.ec\nSubject: Asunto\n"));
        assert!(text.contains("(HTML alternative: 12 bytes, not shown)"));
        assert!(text.contains("\n\nHola.\nSu código es 1234.\n----- end of mail k/1 -----\n"));
    }
}
