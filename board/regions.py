"""Analog line settings per country: one table, one row per region (issue 5).

Choosing a region sets the tone zone (a key of ``firmware.media.tones.TONES``), the ring cadence,
the caller-ID standard and when it is sent, the hook-flash window, the FXO disconnect-supervision
defaults and the line-impedance profile name for drivers that take one. Everything here is a
*default*: the FXS/FXO configs take these values and each one can be overridden per port.

Sources, per column:

* Ring cadences: Asterisk ``configs/samples/indications.conf.sample`` (``ringcadence``), which
  transcribes ITU-T E.180 Supplement 2 (us 2000,4000; uk/au/in 400,200,400,2000; de/cn 1000,4000;
  fr 1500,3500; jp 1000,2000).
* Caller ID: us Telcordia GR-30-CORE (Bell 202 FSK in the silent interval after the first ring);
  uk BT SIN 227 (V.23 FSK after a line reversal, before the first ring; modelled with the ETSI
  encoder); de/au ETSI EN 300 659-1 "during ringing" (after the first ring); fr ETSI with
  line reversal before ringing; cn YD/T 1078 (Bell 202 FSK, after the first ring); in DTMF before
  the first ring; jp NTT "Number Display" (NTT's technical reference "Telephone service
  interface", read here through public descriptions and Asterisk's/spandsp's implementations,
  not the document itself): the exchange rings the CAR signal (0.5 s on, 0.5 s off), the phone
  answers with a short off-hook (the *primary response*; none within 6 s, the figure published
  descriptions of the service give: it has no Number Display and the call rings without caller
  ID), the exchange sends V.23 FSK in NTT's framing (``board.ntt``), the phone goes back on
  hook ("received") and normal ringing follows. The delays between those steps are
  **guesses** (``FxsConfig``, ``CoConfig``). These agree with ``board.callerid.REGIONS``.
* Hook flash: us Telcordia GR-506 timed flash 300-1100 ms (from memory); the others are a
  practical PBX window of 80-800 ms (**guess**: covers the 100 ms "timed break recall" of
  TBR 38 / BT phones and the 270 ms of older German phones).
* Disconnect supervision: **guesses** from field practice. Loop-current drop ("CPC", open switch
  interval) of 250 ms everywhere; polarity reversal on far-end clear where operators commonly
  provide it (cn, in, jp, fr; often a paid option in us/uk/de/au so off by default). The busy and
  congestion cadences are read from ``tones.TONES`` so they are never written twice.
* Impedance: nominal line terminations as named by DAHDI's ``fxo_modes.h`` opermodes (from memory):
  FCC 600 ohm, TBR21 270R+750R||150nF, UK 370R+620R||310nF, AUSTRALIA 220R+820R||120nF,
  CHINA 200R+680R||100nF, JAPAN/INDIA 600 ohm.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware.media.tones import TONES

__all__ = ["CID_AFTER_FIRST_RING", "CID_POLARITY_REVERSAL", "CID_DTMF_BEFORE_RING", "CID_CAR",
           "CAR_CADENCE", "CAR_TIMEOUT", "CAR_MAX_BURST", "RegionProfile", "REGIONS", "region"]

# When caller ID goes to the phone (FXS) or is expected from the CO (FXO).
CID_AFTER_FIRST_RING = "after-first-ring"     # FSK in the first silent interval
CID_POLARITY_REVERSAL = "polarity-reversal"   # line reversal, FSK, then the first ring
CID_DTMF_BEFORE_RING = "dtmf-before-ring"     # DTMF digits, then the first ring
CID_CAR = "car"                               # NTT: CAR, primary response, FSK, then the first ring

CAR_CADENCE = (0.5, 0.5)   # NTT's CAR signal: ring voltage 0.5 s on, 0.5 s off, repeated
CAR_TIMEOUT = 6.0          # NTT: no primary response to CAR within this: ring without caller ID
CAR_MAX_BURST = 0.75       # a terminal takes a first burst this short for CAR, longer for a ring
                           # (guess: between CAR's 0.5 s and the 1 s of a Japanese ring)


@dataclass(frozen=True)
class RegionProfile:
    """The analog-line defaults of one country."""

    code: str
    tone_zone: str                       # key of tones.TONES
    ring_cadence: tuple[float, ...]      # seconds on, off, (on, off, ...)
    cid_standard: str | None             # "bell" | "etsi" | "dtmf" | "ntt" | None (none)
    cid_format: str | None               # "sdmf" | "mdmf" | "etsi" | "ntt" | None (DTMF)
    cid_start: str | None                # one of the CID_* constants
    flash_min: float                     # seconds: an on-hook this long or longer is a flash ...
    flash_max: float                     # ... up to this long; longer is a hang-up
    disconnect_polarity: bool            # FXO: a reversal while connected means the far end left
    loop_drop_ms: int                    # FXO: a loop-current drop at least this long = clear
    impedance: str                       # profile name a driver maps to its registers
    dahdi_opermode: str                  # the same, as DAHDI's wctdm/wcaxx opermode

    @property
    def busy_cadence(self) -> tuple[int, ...]:
        """Busy tone cadence in ms (on, off, ...) from the tone plan."""
        return TONES[self.tone_zone]["busy"].cadence

    @property
    def congestion_cadence(self) -> tuple[int, ...]:
        """Congestion (reorder) cadence in ms from the tone plan."""
        return TONES[self.tone_zone]["congestion"].cadence

    @property
    def law(self) -> str:
        """The G.711 law of the country's network (G.711: µ-law in North America and Japan)."""
        return "ulaw" if self.code in _ULAW else "alaw"

    @property
    def cid_before_ring(self) -> bool:
        return self.cid_start in (CID_POLARITY_REVERSAL, CID_DTMF_BEFORE_RING, CID_CAR)


_ULAW = frozenset({"us", "jp"})
_PBX_FLASH = (0.080, 0.800)  # guess, see the module docstring

REGIONS: dict[str, RegionProfile] = {
    "us": RegionProfile("us", "us", (2.0, 4.0), "bell", "mdmf", CID_AFTER_FIRST_RING,
                        0.300, 1.100, False, 250, "600R", "FCC"),
    "uk": RegionProfile("uk", "uk", (0.4, 0.2, 0.4, 2.0), "etsi", "etsi", CID_POLARITY_REVERSAL,
                        *_PBX_FLASH, False, 250, "complex-UK", "UK"),
    "de": RegionProfile("de", "de", (1.0, 4.0), "etsi", "etsi", CID_AFTER_FIRST_RING,
                        *_PBX_FLASH, False, 250, "complex-ETSI", "TBR21"),
    "fr": RegionProfile("fr", "fr", (1.5, 3.5), "etsi", "etsi", CID_POLARITY_REVERSAL,
                        *_PBX_FLASH, True, 250, "complex-ETSI", "TBR21"),
    "cn": RegionProfile("cn", "cn", (1.0, 4.0), "bell", "mdmf", CID_AFTER_FIRST_RING,
                        *_PBX_FLASH, True, 250, "complex-CN", "CHINA"),
    "jp": RegionProfile("jp", "jp", (1.0, 2.0), "ntt", "ntt", CID_CAR,
                        *_PBX_FLASH, True, 250, "600R", "JAPAN"),
    "au": RegionProfile("au", "au", (0.4, 0.2, 0.4, 2.0), "etsi", "etsi", CID_AFTER_FIRST_RING,
                        *_PBX_FLASH, False, 250, "complex-AU", "AUSTRALIA"),
    "in": RegionProfile("in", "in", (0.4, 0.2, 0.4, 2.0), "dtmf", None, CID_DTMF_BEFORE_RING,
                        *_PBX_FLASH, True, 250, "600R", "INDIA"),
}


def region(code: str) -> RegionProfile:
    """The profile for a region code (case-insensitive); KeyError names the known ones."""
    try:
        return REGIONS[code.lower()]
    except KeyError:
        raise KeyError(f"unknown region {code!r}; known: {', '.join(sorted(REGIONS))}") from None
