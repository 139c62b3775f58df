export const colors = ["#ef476f", "#06d6a0", "#118ab2", "#ffd166"];
