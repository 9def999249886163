"""ONC RPC record marking over TCP (RFC 5531 section 11), shared by the
capture tools: bytes of one direction of a connection go in, whole records
(fragments joined, marks removed) come out."""


class Records:
    """Cuts a byte stream at its record marks. `feed` takes the next bytes
    of the stream, in order, and returns the records they completed."""

    def __init__(self):
        self.buf = b""
        self.record = b""

    def feed(self, data):
        self.buf += data
        done = []
        at = 0
        while len(self.buf) - at >= 4:
            mark = int.from_bytes(self.buf[at : at + 4], "big")
            length = mark & 0x7FFFFFFF
            if len(self.buf) - at < 4 + length:
                break
            self.record += self.buf[at + 4 : at + 4 + length]
            at += 4 + length
            if mark & 0x80000000:
                done.append(self.record)
                self.record = b""
        self.buf = self.buf[at:]
        return done
