//! Whether the device has a network to sync over, so the automatic sync
//! starts at once when the network returns instead of waiting out its
//! back-off (up to 5 minutes). On Linux (the desktop, and Android where the
//! system lets an app read it) the kernel's routing tables say it: a route
//! to everywhere (a default route, IPv4 or IPv6) on an interface that is up.
//! Reading them costs no radio wake-up. Where they cannot be read the
//! answer is unknown and nothing is woken: the platform's shell wakes the
//! sync from its own callback instead (`Services.wake`; Android's
//! `ConnectivityManager.NetworkCallback`, iOS's `NWPathMonitor`).

use std::sync::Arc;
use std::time::Duration;

/// How often the routing tables are read.
pub const CHECK_EVERY: Duration = Duration::from_secs(3);

/// A default route in the kernel's tables; `None` when they cannot be read
/// (not Linux, or an Android that hides them).
pub fn has_default_route() -> Option<bool> {
    let v4 = std::fs::read_to_string("/proc/net/route").ok();
    let v6 = std::fs::read_to_string("/proc/net/ipv6_route").ok();
    if v4.is_none() && v6.is_none() {
        return None;
    }
    Some(v4.as_deref().is_some_and(default_route_v4) || v6.as_deref().is_some_and(default_route_v6))
}

/// `/proc/net/route`: a line whose destination and mask are 0 and whose
/// flags say up (`RTF_UP`, 1).
fn default_route_v4(table: &str) -> bool {
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() >= 8
            && f[1] == "00000000"
            && f[7] == "00000000"
            && u32::from_str_radix(f[3], 16).is_ok_and(|flags| flags & 1 == 1)
    })
}

/// `/proc/net/ipv6_route`: destination `::/0` on an interface other than
/// loopback (the kernel lists unreachable defaults on `lo`), flags up.
fn default_route_v6(table: &str) -> bool {
    table.lines().any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() >= 10
            && f[0].bytes().all(|b| b == b'0')
            && f[1] == "00"
            && f[9] != "lo"
            && u32::from_str_radix(f[8], 16).is_ok_and(|flags| flags & 1 == 1)
    })
}

/// Wakes `wake` each time `network()` goes from "none" to "some", read
/// every `every`; never returns. An unknown answer wakes nothing.
pub async fn wake_when_back(
    mut network: impl FnMut() -> Option<bool>,
    wake: Arc<tokio::sync::Notify>,
    every: Duration,
) {
    let mut before = network();
    loop {
        tokio::time::sleep(every).await;
        let now = network();
        if before == Some(false) && now == Some(true) {
            tracing::info!("network back: syncing now");
            wake.notify_one();
        }
        before = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4_UP: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n\
        wlan0\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0\n";
    const V4_LAN_ONLY: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        wlan0\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0\n";
    const V6_UP: &str = "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 wlan0\n\
        00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000003 00000000 00000003 wlan0\n";
    const V6_LOOPBACK_ONLY: &str = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n";

    #[test]
    fn a_default_route_that_is_up_means_a_network_and_a_local_one_does_not() {
        assert!(default_route_v4(V4_UP));
        assert!(!default_route_v4(V4_LAN_ONLY));
        assert!(!default_route_v4(""));
        assert!(default_route_v6(V6_UP));
        assert!(!default_route_v6(V6_LOOPBACK_ONLY));
    }

    #[tokio::test(start_paused = true)]
    async fn the_sync_is_woken_once_when_the_network_returns_and_never_when_unknown() {
        let wake = Arc::new(tokio::sync::Notify::new());
        let states = [
            Some(false),
            Some(false),
            Some(true),
            Some(true),
            None,
            Some(true),
        ];
        let mut next = states.into_iter().chain(std::iter::repeat(Some(true)));
        let watcher = tokio::spawn(wake_when_back(
            move || next.next().flatten(),
            wake.clone(),
            Duration::from_secs(3),
        ));
        // Woken once: the third reading finds the network back.
        tokio::time::timeout(Duration::from_secs(10), wake.notified())
            .await
            .expect("woken when the network returned");
        // Then no more: "unknown, then some" is not a return.
        let again = tokio::time::timeout(Duration::from_secs(60), wake.notified()).await;
        assert!(again.is_err(), "woken again without the network going away");
        watcher.abort();
    }
}
