export const extra = "lazy";
