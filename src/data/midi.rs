//! Standard MIDI files for piano rolls (through the `midly` crate): a sequence of frames, each the
//! set of sounding notes (units 0..88, MIDI `21 + unit`), written as note-on/note-off events at a
//! fixed frame length, and read back into frames.

use midly::num::{u4, u7, u15, u28};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

use super::music::LOWEST;

/// Ticks per quarter note, and ticks per frame (an eighth note).
const PPQ: u16 = 480;
const FRAME_TICKS: u32 = 240;
/// Microseconds per quarter note (120 beats per minute).
const TEMPO: u32 = 500_000;
const VELOCITY: u8 = 80;

/// The frames as a standard MIDI file (format 0, one track, channel 0).
pub fn write(frames: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let mut events: Vec<(u32, bool, u8)> = vec![]; // (tick, on, key)
    let empty = vec![];
    for (i, frame) in frames.iter().enumerate() {
        let before = if i == 0 { &empty } else { &frames[i - 1] };
        let tick = i as u32 * FRAME_TICKS;
        for &n in before.iter().filter(|n| !frame.contains(n)) {
            events.push((tick, false, n));
        }
        for &n in frame.iter().filter(|n| !before.contains(n)) {
            events.push((tick, true, n));
        }
    }
    let end = frames.len() as u32 * FRAME_TICKS;
    for &n in frames.last().unwrap_or(&empty) {
        events.push((end, false, n));
    }
    let mut track = vec![TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::Tempo(midly::num::u24::new(TEMPO))),
    }];
    let mut last = 0;
    for (tick, on, unit) in events {
        let key = u7::try_from(unit + LOWEST).ok_or_else(|| format!("note {unit} is beyond the piano"))?;
        let message = if on {
            MidiMessage::NoteOn { key, vel: u7::new(VELOCITY) }
        } else {
            MidiMessage::NoteOff { key, vel: u7::new(0) }
        };
        track.push(TrackEvent {
            delta: u28::new(tick - last),
            kind: TrackEventKind::Midi { channel: u4::new(0), message },
        });
        last = tick;
    }
    // The end of the track marks the end of the last frame, silent or not.
    track.push(TrackEvent { delta: u28::new(end - last), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });
    let smf = Smf { header: Header::new(Format::SingleTrack, Timing::Metrical(u15::new(PPQ))), tracks: vec![track] };
    let mut bytes = vec![];
    smf.write_std(&mut bytes).map_err(|e| format!("cannot write MIDI: {e}"))?;
    Ok(bytes)
}

/// The most frames a file may hold: 10 hours at 120 beats a minute (a longer one is damaged or
/// hostile; the fuzzer found a 45-byte file asking for 3 GB).
const MAX_FRAMES: u32 = 10 * 3600 * 2 * 2;

/// The frames a file written by [`write`] holds (notes sounding at each frame's start). Any
/// bytes give frames or an error in time and memory linear in the file's length.
pub fn read(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let smf = Smf::parse(bytes).map_err(|e| format!("not a MIDI file: {e}"))?;
    let Timing::Metrical(ppq) = smf.header.timing else { return Err("MIDI file without metrical timing".into()) };
    let frame_ticks = (u32::from(ppq.as_int()) / 2).max(1);
    let mut sounding: Vec<u8> = vec![];
    let mut changes: Vec<(u32, Vec<u8>)> = vec![];
    let mut end = 0;
    for track in &smf.tracks {
        let mut tick = 0u32;
        for ev in track {
            tick = tick.saturating_add(ev.delta.as_int());
            end = end.max(tick);
            if let TrackEventKind::Midi { message, .. } = ev.kind {
                let (key, on) = match message {
                    MidiMessage::NoteOn { key, vel } => (key.as_int(), vel.as_int() > 0),
                    MidiMessage::NoteOff { key, .. } => (key.as_int(), false),
                    _ => continue,
                };
                let unit = key.checked_sub(LOWEST).ok_or("a note below the piano")?;
                if on {
                    if !sounding.contains(&unit) {
                        sounding.push(unit); // a key sounds once however often it is struck
                    }
                } else {
                    sounding.retain(|&n| n != unit);
                }
                changes.push((tick, sounding.clone()));
            }
        }
    }
    let count = end / frame_ticks;
    if count > MAX_FRAMES {
        return Err(format!("the MIDI file lasts {count} frames, more than the {MAX_FRAMES} a piece may have"));
    }
    // One sweep over the changes in time order (tracks' changes interleave).
    changes.sort_by_key(|c| c.0);
    let (mut frames, mut next, mut current) = (Vec::with_capacity(count as usize), 0, &[][..]);
    for f in 0..count {
        let at = f * frame_ticks;
        while let Some(c) = changes.get(next).filter(|c| c.0 <= at) {
            current = &c.1;
            next += 1;
        }
        let mut notes = current.to_vec();
        notes.sort_unstable();
        frames.push(notes);
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    #[test]
    fn frames_survive_a_round_trip_through_midi() {
        let frames: Vec<Vec<u8>> =
            vec![vec![39, 43, 46], vec![39, 43, 46], vec![], vec![0, 87], vec![40], vec![40, 44], vec![]];
        let bytes = super::write(&frames).unwrap();
        assert_eq!(super::read(&bytes).unwrap(), frames);
    }
}
