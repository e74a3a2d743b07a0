"""The synthetic generator's version: part of every manifest, so a changed generator invalidates caches.

Bump it whenever a change alters any generated pixel or label (task designs, the chunk size, the IFS sampler).
"""

GENERATOR_VERSION = "4"
