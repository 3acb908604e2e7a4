//! librdkafka's property table, which it prints only to a C `FILE*`
//! (`rd_kafka_conf_properties_show`, wrapped by neither `rdkafka` nor `rdkafka-sys`), and its
//! test-only `rd_kafka_test_fatal_error` (with the `testing` feature).

/// The property table as librdkafka prints it, written to an anonymous temporary file and read
/// back.
pub(crate) fn properties_table() -> std::io::Result<String> {
    // SAFETY: `tmpfile` returns an owned FILE* (or null, checked); librdkafka only writes to
    // it; every libc call gets that valid pointer, and it is closed exactly once at the end.
    unsafe {
        let file = libc::tmpfile();
        if file.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        rdkafka::bindings::rd_kafka_conf_properties_show(file);
        libc::fflush(file);
        libc::rewind(file);
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = libc::fread(buf.as_mut_ptr().cast(), 1, buf.len(), file);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        libc::fclose(file);
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Raises a fatal error in `client` through librdkafka's testing hook.
#[cfg(feature = "testing")]
pub(crate) fn test_fatal_error<C: rdkafka::ClientContext>(
    client: &rdkafka::client::Client<C>,
    reason: &str,
) {
    let reason = std::ffi::CString::new(reason).unwrap_or_default();
    // SAFETY: the client pointer is valid for the duration of the borrow; librdkafka copies the
    // reason string.
    unsafe {
        rdkafka_sys::rd_kafka_test_fatal_error(
            client.native_ptr(),
            rdkafka_sys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID,
            reason.as_ptr(),
        );
    }
}
