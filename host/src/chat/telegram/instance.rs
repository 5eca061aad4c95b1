//! `INSTANCE_ID`: the name this process's inbox leases carry beyond its own
//! run, so that after a crash the restarted process takes back the updates
//! it was handling at once instead of waiting for their leases to run out.
//! It defaults to the host name and the port of `HTTP_ADDR` (`host:8080`):
//! containers differ by host name, and two processes on one host cannot
//! serve one port, so no two live replicas share it by default (two that
//! did would take each other's leases and handle those updates twice).

use crate::env::ConfigError;

/// Longer names are a mistake (a pasted secret, a file), not an identity.
const MAX_LEN: usize = 128;

/// `INSTANCE_ID`, or the host name and `http_port` (the port of
/// `HTTP_ADDR`, which every serving process binds) when it is unset.
pub fn instance_id(value: Option<String>, http_port: u16) -> Result<String, ConfigError> {
    let (id, source) = match value {
        Some(value) => (value.trim().to_string(), "INSTANCE_ID"),
        None => {
            let host = host_name().map_err(|error| {
                ConfigError::new(
                    "INSTANCE_ID",
                    format!("not set, and the host name cannot be read ({error}); set it to a name unique to this replica"),
                )
            })?;
            (format!("{host}:{http_port}"), "the host name")
        }
    };
    let fine = !id.is_empty() && id.len() <= MAX_LEN && id.bytes().all(|b| b.is_ascii_graphic());
    if fine {
        Ok(id)
    } else {
        Err(ConfigError::new(
            "INSTANCE_ID",
            format!(
                "expected a name unique to this replica (1 to {MAX_LEN} visible ASCII characters, no spaces), but {source} is {id:?}"
            ),
        ))
    }
}

fn host_name() -> std::io::Result<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length, which is passed;
    // the name is read only up to its first NUL, within the buffer.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    Ok(String::from_utf8_lossy(&buffer[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_name_and_the_http_port_are_the_default() {
        let id = instance_id(None, 8081).unwrap();
        assert_eq!(id, format!("{}:8081", host_name().unwrap()));
        assert_ne!(id, instance_id(None, 8082).unwrap());
    }

    #[test]
    fn a_set_name_is_trimmed_and_a_bad_one_names_the_variable() {
        assert_eq!(instance_id(Some(" bot-2 ".into()), 8080).unwrap(), "bot-2");
        for bad in ["", "two words", &"x".repeat(129)] {
            let error = instance_id(Some(bad.into()), 8080).unwrap_err();
            assert_eq!(error.variable, "INSTANCE_ID", "{bad:?}");
            assert!(error.problem.contains("unique to this replica"), "{error}");
        }
    }
}
